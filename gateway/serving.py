"""Serving WSGI apps as real threaded HTTP/1.1 servers on cheroot: the admin API in production; the emulators,
and the gateway in tests.

cheroot keeps connections alive as real provider application servers do, so a client's connection pool is
exercised the way it is in production.
"""
from __future__ import annotations

import signal
import threading
from types import TracebackType
from typing import Any

from cheroot.wsgi import Server


class BackgroundServer:
    """A threaded HTTP server in a background thread; ``url`` is its base address."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 16) -> None:
        self._server = Server((host, port), app, numthreads=threads, shutdown_timeout=1)
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name=f"http-{host}", daemon=True)
        self.host = host
        self.port: int = self._server.bind_addr[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(app: Any, host: str, port: int, threads: int = 16) -> None:
    """Serve ``app`` in the foreground until SIGTERM or Ctrl-C, then stop cleanly."""
    server = Server((host, port), app, numthreads=threads, shutdown_timeout=1)
    server.prepare()

    def stop(*_: object) -> None:
        # cheroot must be stopped from outside its serving loop.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve()
