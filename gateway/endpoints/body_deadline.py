"""A request body that stops arriving is given up after ``GATEWAY_BODY_READ_TIMEOUT_SECONDS``.

gunicorn's gthread workers read a body from a blocking socket without any timeout: a client that declares more
bytes than it sends (a truncated body) holds the thread forever, and is itself left waiting for an answer that
never comes. While the application reads the body, the socket gets a timeout, so each read that gets no byte
in time fails; the caller answers with a fault and closes the connection. cheroot (the test and emulator
server) applies its own socket timeout, which surfaces the same way.
"""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any


class BodyIncomplete(Exception):
    """The request body stopped arriving before it was complete."""


@contextlib.contextmanager
def body_read_deadline(environ: dict[str, Any], seconds: float) -> Iterator[None]:
    """Within the block, a read of the request body that waits more than ``seconds`` for a byte raises
    :class:`BodyIncomplete`; the socket is blocking again afterwards, for writing the answer."""
    sock: socket.socket | None = environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(seconds)
    try:
        yield
    except TimeoutError as exc:
        declared = environ.get("CONTENT_LENGTH") or "no length"
        raise BodyIncomplete(f"the request body stopped arriving ({declared} bytes declared): no byte for {seconds:g} s") from exc
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
