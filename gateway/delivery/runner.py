"""Running a delivery worker: its event loop (in the process's main thread for ``gateway worker``, in a thread of
its own when embedded) and, beside it on APScheduler's threads, the late-delivery check and journal sealing."""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

import uvloop
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.config import Settings
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.late import check_late_deliveries
from gateway.delivery.worker import DeliveryWorker, WorkerSettings
from gateway.failure_log import FailureLog
from gateway.metrics import process_metrics
from gateway.outbound.clients import backend_client, provider_client
from gateway.security.keys import GatewayKeys, load_keys
from gateway.store.messages import MessageStore
from journals.logging_journal import LoggingJournal
from journals.seal import schedule_sealing
from registry.snapshot import RegistryCache

log = logging.getLogger(__name__)
failures = FailureLog(log)
STOP_TIMEOUT_SECONDS = 120.0  # an embedded worker's deliveries in flight are waited for this long at most


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
    return DeliveryWorker(
        engine=engine,
        registry=RegistryCache(engine, settings.registry_refresh_seconds),
        store=MessageStore(engine, LoggingJournal(engine)),
        guard=DeliveryGuard(engine, settings.breaker_probe_seconds),
        client=provider_client(settings),
        settings=WorkerSettings(
            concurrency=settings.delivery_concurrency,
            threads=settings.threads,
            poll_seconds=settings.delivery_poll_seconds,
            probe_seconds=min(settings.breaker_probe_seconds, 5.0),
            lease_margin_seconds=settings.delivery_lease_margin_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
        ),
        keys=load_keys(settings),
        adapters=AdapterPool(backend_client(settings)),
        metrics=process_metrics(settings.metrics_dir),
    )


def start_scheduler(settings: Settings, engine: Engine, keys: GatewayKeys) -> BackgroundScheduler:
    """Watch for late deliveries and seal the journals, in the background (blocking jobs, off the loop)."""
    scheduler = BackgroundScheduler()
    scheduler.add_job(
        guarded(check_late_deliveries, "the late-delivery check"), "interval", seconds=min(60.0, settings.late_delivery_seconds / 4),
        args=(engine, settings.late_delivery_seconds), max_instances=1, coalesce=True,
    )
    # Sealing journals in the worker process keeps it off the message path; several workers take turns.
    schedule_sealing(scheduler, engine, keys.sealing, settings.seal_interval_seconds, guard=guarded)
    scheduler.start()
    return scheduler


def run_worker_forever(settings: Settings, engine: Engine) -> None:
    """``gateway worker``: deliver until SIGTERM or Ctrl-C, then finish the deliveries in flight."""
    worker = build_worker(settings, engine)
    scheduler = start_scheduler(settings, engine, worker.keys)

    async def deliver() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(deliver())
    finally:
        scheduler.shutdown(wait=True)
        worker.close()


class BackgroundWorker:
    """A delivery worker embedded in another process: its loop in a thread of its own, its scheduler beside it."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.worker = build_worker(settings, engine)
        self._scheduler = start_scheduler(settings, engine, self.worker.keys)
        self._loop = uvloop.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), name="delivery-loop", daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        await self.worker.run(self._stop)

    def probe(self) -> None:
        """Run the half-open probes now and wait for them."""
        asyncio.run_coroutine_threadsafe(self.worker.probe(), self._loop).result(STOP_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Stop claiming, finish the deliveries in flight, stop the scheduler."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._scheduler.shutdown(wait=True)
        if self._thread.is_alive():  # deliveries still in flight: the daemon thread goes with the process
            log.warning("the embedded delivery worker did not stop within %.0f s", STOP_TIMEOUT_SECONDS)
            return
        self.worker.close()
        self._loop.close()
