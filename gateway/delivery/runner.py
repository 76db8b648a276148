"""Running delivery workers on APScheduler: the polling job and the half-open probe job."""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.config import Settings
from gateway.delivery.guard import DeliveryGuard
from gateway.outbound.http_client import HttpClient
from gateway.delivery.late import check_late_deliveries
from gateway.failure_log import FailureLog
from gateway.metrics import process_metrics
from gateway.delivery.worker import DeliveryWorker, WorkerSettings
from gateway.security.keys import load_keys
from gateway.store.messages import MessageStore
from journals.seal import schedule_sealing
from journals.logging_journal import LoggingJournal
from registry.snapshot import RegistryCache

log = logging.getLogger(__name__)
failures = FailureLog(log)


def guarded(job: Callable[..., object], name: str) -> Callable[..., None]:
    """``job`` for the scheduler: a failure (the database away, say) is one log line, not a traceback every run."""

    def run(*args: object) -> None:
        try:
            job(*args)
        except Exception as exc:
            failures.failed(exc, "%s failed; it runs again at its next interval", name)

    return run


def build_worker(settings: Settings, engine: Engine) -> DeliveryWorker:
    """A delivery worker wired to ``engine`` with ``settings``."""
    client = HttpClient(settings.delivery_threads, settings.provider_connect_timeout_seconds, settings.max_provider_response_bytes)
    return DeliveryWorker(
        engine=engine,
        registry=RegistryCache(engine, settings.registry_refresh_seconds),
        store=MessageStore(engine, LoggingJournal(engine)),
        guard=DeliveryGuard(engine, settings.breaker_probe_seconds),
        client=client,
        settings=WorkerSettings(
            threads=settings.delivery_threads,
            lease_margin_seconds=settings.delivery_lease_margin_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
        ),
        keys=load_keys(settings),
        adapters=AdapterPool(client),
        metrics=process_metrics(settings.metrics_dir),
    )


def start_scheduler(worker: DeliveryWorker, settings: Settings, engine: Engine) -> BackgroundScheduler:
    """Poll for due deliveries, probe switched-off points (when configured) and watch for late deliveries, in the
    background."""
    scheduler = BackgroundScheduler()
    scheduler.add_job(
        guarded(check_late_deliveries, "the late-delivery check"), "interval", seconds=min(60.0, settings.late_delivery_seconds / 4),
        args=(engine, settings.late_delivery_seconds), max_instances=1, coalesce=True,
    )
    scheduler.add_job(guarded(worker.poll, "polling for due deliveries"), "interval", seconds=settings.delivery_poll_seconds, max_instances=1, coalesce=True)
    # Sealing journals in the worker process keeps it off the message path; several workers take turns.
    schedule_sealing(scheduler, engine, worker.keys.sealing, settings.seal_interval_seconds, guard=guarded)
    if settings.breaker_probe_seconds > 0:
        scheduler.add_job(guarded(worker.probe, "the half-open probe"), "interval", seconds=min(settings.breaker_probe_seconds, 5.0), max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler


def run_worker_forever(settings: Settings, engine: Engine) -> None:
    """``gateway worker``: deliver until SIGTERM or Ctrl-C, then finish the deliveries in flight."""
    worker = build_worker(settings, engine)
    scheduler = start_scheduler(worker, settings, engine)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    scheduler.shutdown(wait=True)
    worker.close()
