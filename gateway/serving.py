"""Serving apps in a background thread of this process: WSGI apps (the admin API in production, the emulators) as
threaded HTTP/1.1 servers on cheroot, and the gateway's ASGI app on the production server, uvicorn, for tests and
tools that need a gateway beside them.

cheroot keeps connections alive as real provider application servers do, so a client's connection pool is
exercised the way it is in production.
"""
from __future__ import annotations

import signal
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from cheroot.wsgi import Server

from gateway.endpoints.http_protocol import GatewayHttpProtocol


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


class BackgroundAsgiServer:
    """An ASGI app on uvicorn (httptools, uvloop, the app's lifespan), its event loop in a background thread;
    ``url`` is its base address."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        config = uvicorn.Config(
            app, http=GatewayHttpProtocol, loop="uvloop", lifespan="on", log_level="warning", access_log=False, timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"asgi-{host}", daemon=True)
        self.host = host
        self.port: int = self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundAsgiServer:
        """Start serving; return once the app's startup has run and the socket is served."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> BackgroundAsgiServer:
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
