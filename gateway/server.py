"""The production server: uvicorn (httptools, uvloop) with ``GATEWAY_WORKERS`` processes, one event loop each, where a
slow provider costs an awaiting coroutine, not a thread. docs/performance.md gives the measurements behind the
choice."""
from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

import urllib3
import uvicorn

from gateway.app import create_app
from gateway.config import Settings
from gateway.endpoints.asgi import GatewayApp
from gateway.endpoints.http_protocol import GatewayHttpProtocol
from gateway.endpoints.memory import tune_allocator

LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def application() -> GatewayApp:
    """The application of one worker process, built in it from the environment (uvicorn's factory)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    # In the worker, before its threads allocate: the allocator options only shape arenas made afterwards.
    tune_allocator()
    app = create_app(settings)
    # Everything built so far (modules, the registry snapshot, schemas) lives as long as the worker: moved out of
    # the collector's reach, the periodic full collections stop walking it on every request's garbage.
    gc.freeze()
    return app


class GatewayServer:
    """uvicorn running :func:`application` in every worker process. Its workers read their settings from the
    environment (``GATEWAY_*``), as the process that starts them does."""

    def __init__(self, settings: Settings, when_ready: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._when_ready = when_ready

    def run(self) -> None:
        """Serve until SIGTERM or Ctrl-C; each worker finishes its exchanges in flight (up to the sync budget)."""
        settings = self._settings
        if self._when_ready is not None:
            threading.Thread(target=self._announce, args=(self._when_ready,), name="announce", daemon=True).start()
        uvicorn.run(
            "gateway.server:application",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            http=GatewayHttpProtocol,
            loop="uvloop",
            lifespan="on",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(settings.sync_timeout_seconds) + 5,
            backlog=2048,
            access_log=False,
            log_level=settings.log_level.lower(),
        )

    def _announce(self, when_ready: Callable[[], None]) -> None:
        """Call ``when_ready`` once a worker answers ``/health`` (uvicorn has no hook for it)."""
        url = f"http://{self._settings.host}:{self._settings.port}/health"
        http = urllib3.PoolManager(retries=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                http.request("GET", url, timeout=1.0)
                when_ready()
                return
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
