"""Running WSGI apps (emulators, and the gateway in tests) as real threaded HTTP servers on loopback."""
from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


class BackgroundServer:
    """A threaded HTTP server in a background thread; ``url`` is its base address."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{port}", daemon=True)
        self.host = host
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(app: Any, host: str, port: int) -> None:
    """Serve ``app`` in the foreground until interrupted."""
    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
