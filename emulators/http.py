"""HTTP helpers of the emulators. They run as real threaded HTTP/1.1 servers on loopback through the gateway's
cheroot helper (``gateway.serving``)."""
from __future__ import annotations

from typing import Any

from gateway.serving import serve_forever

__all__ = ["reply", "serve_forever"]  # the emulators serve themselves with ``serve_forever``


def reply(start_response: Any, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> list[bytes]:
    """Answer a WSGI request with ``body``."""
    start_response(f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
