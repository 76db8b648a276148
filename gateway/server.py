"""The production server: gunicorn with threaded workers, so a slow provider holds a thread, not the gateway."""
from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.app import create_app
from gateway.config import Settings
from gateway.endpoints.memory import tune_allocator


class GatewayServer(BaseApplication):
    """gunicorn running :func:`gateway.app.create_app` in every worker (built after the fork)."""

    def __init__(self, settings: Settings, when_ready: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._when_ready = when_ready
        super().__init__()

    def load_config(self) -> None:
        settings = self._settings
        self.cfg.set("bind", f"{settings.host}:{settings.port}")
        self.cfg.set("workers", settings.workers)
        self.cfg.set("threads", settings.threads)
        self.cfg.set("worker_class", "gthread")
        # A worker is only killed when it is stuck well past the longest legitimate exchange.
        self.cfg.set("timeout", int(settings.sync_timeout_seconds) + 30)
        self.cfg.set("graceful_timeout", int(settings.sync_timeout_seconds) + 5)
        self.cfg.set("keepalive", 5)
        if Path("/dev/shm").is_dir():
            # The worker heartbeat touches a file per request; on tmpfs that costs no disk I/O.
            self.cfg.set("worker_tmp_dir", "/dev/shm")
        self.cfg.set("loglevel", settings.log_level.lower())
        if self._when_ready is not None:
            ready = self._when_ready
            self.cfg.set("when_ready", lambda _arbiter: ready())

    def load(self) -> Any:
        logging.basicConfig(
            level=self._settings.log_level.upper(), format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
        )
        # In the worker, before its threads allocate: the allocator options only shape arenas made afterwards.
        tune_allocator()
        application = create_app(self._settings)
        # Everything built so far (modules, the registry snapshot, schemas) lives as long as the worker: moved out of
        # the collector's reach, the periodic full collections stop walking it on every request's garbage.
        gc.freeze()
        return application
