"""Serving the admin API on its own address (``GATEWAY_ADMIN_HOST``, loopback by default, and
``GATEWAY_ADMIN_PORT``), apart from the SOAP channels."""
from __future__ import annotations

import logging

from sqlalchemy import Engine

from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.db import make_engine
from gateway.serving import BackgroundServer, serve_forever

ADMIN_THREADS = 4  # a handful of administrators and auditors, never message traffic


def start_admin_server(settings: Settings, engine: Engine) -> BackgroundServer:
    """Serve the admin API in a background thread (tests, or beside another server); stop() it when done."""
    return BackgroundServer(create_admin_app(settings, engine), settings.admin_host, settings.admin_port, ADMIN_THREADS).start()


def run_admin_forever(settings: Settings) -> None:
    """Serve the admin API in the foreground until SIGTERM or Ctrl-C (``python -m gateway.admin``)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    engine = make_engine(settings.database_url, pool_size=ADMIN_THREADS + 1)
    logging.getLogger(__name__).info("admin API listening on %s:%s", settings.admin_host, settings.admin_port)
    serve_forever(create_admin_app(settings, engine), settings.admin_host, settings.admin_port, ADMIN_THREADS)
