"""The production server: gunicorn with threaded workers, so a slow provider holds a thread, not the gateway."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.app import create_app
from gateway.config import Settings


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
        self.cfg.set("loglevel", settings.log_level.lower())
        if self._when_ready is not None:
            ready = self._when_ready
            self.cfg.set("when_ready", lambda _arbiter: ready())

    def load(self) -> Any:
        return create_app(self._settings)
