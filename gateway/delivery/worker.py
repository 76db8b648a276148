"""The delivery worker: PUSH deliveries and status notifications, with leases, throttle, retries and breaker.

Any number of worker processes, on any number of machines, share the queue through the database only: a task
is claimed by setting a lease on it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), and a
claim never takes a task whose lease is still running. A worker that dies leaves its leases to expire; the task
is then claimed again, so every accepted message is delivered at least once (docs/async.md says how recipients
de-duplicate).

The worker is one event loop per process (``GATEWAY_DELIVERY_CONCURRENCY`` deliveries in flight, each a task on
the loop, none holding a thread while its recipient answers) and composes its parts by job: claiming
(``claiming.py``: the poll, the slots, the bulkhead), calling (``calling.py``: the attempt, its envelope and the
recipient's answer, through the same outbound client as the synchronous channel), the outcome (``outcome.py``:
done, retried, failed, answered back to the initiator) and the breaker's half-open probe (``breaker.py``).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.delivery.breaker import HalfOpenProbe
from gateway.delivery.calling import Caller
from gateway.delivery.claiming import Claimer, failures
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.outcome import Outcomes
from gateway.delivery.parts import WorkerParts
from gateway.metrics import GatewayMetrics, process_metrics
from gateway.outbound.async_client import AsyncHttpClient
from gateway.security.keys import GatewayKeys
from gateway.store.messages import MessageStore
from gateway.store.tasks import TaskQueue
from registry.snapshot import RegistryCache


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int
    threads: int
    poll_seconds: float
    probe_seconds: float  # 0: no half-open probes
    lease_margin_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float


class DeliveryWorker:
    """Claims due tasks and delivers them on one event loop, never more at once than its concurrency.

    The database work has ``threads`` of its own (the loop's default executor); SOAP recipients and the adapters'
    back offices are awaited on the loop."""

    def __init__(
        self,
        engine: Engine,
        registry: RegistryCache,
        store: MessageStore,
        guard: DeliveryGuard,
        client: AsyncHttpClient,
        settings: WorkerSettings,
        keys: GatewayKeys,
        adapters: AdapterPool,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._keys = keys
        self._adapters = adapters
        self._client = client
        self._settings = settings
        self._blocking_threads = ThreadPoolExecutor(settings.threads, thread_name_prefix="delivery-db")
        # This process's instruments (the app's too, when both run in one process).
        metrics = metrics or process_metrics(None)
        tasks = TaskQueue(engine, settings.lease_margin_seconds)  # one lease owner for all the parts
        outcomes = Outcomes(engine, store, guard, tasks, metrics, settings.retry_base_seconds, settings.retry_max_seconds)
        caller = Caller(guard, tasks, client, keys, adapters, outcomes, metrics)
        parts = WorkerParts(engine, registry, store, guard, tasks, caller, outcomes, metrics)
        self._claimer = Claimer(parts, settings.concurrency)
        self._probe = HalfOpenProbe(parts)

    @property
    def keys(self) -> GatewayKeys:
        """The gateway's keys this worker signs with (loaded once: a GOST PKCS#12 costs a Python KDF)."""
        return self._keys

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish the deliveries in flight and close the connections.

        After a claim that filled every free slot (more may be due) the next comes as soon as a batch's worth of
        slots is free again; while a point's queue waits for its slots, as soon as that point has half of them
        free; after one that found the queue short, at the next poll interval."""
        asyncio.get_running_loop().set_default_executor(self._blocking_threads)
        next_probe = time.monotonic()
        probing: asyncio.Task[int] | None = None
        try:
            while not stop.is_set():
                free = self._claimer.free
                started = await self._guarded(self._claimer.poll(), "polling for due deliveries")
                # Probes run beside the claims (a probed host that hangs holds its probe, not the queue), one
                # round at a time.
                if self._settings.probe_seconds > 0 and time.monotonic() >= next_probe and (probing is None or probing.done()):
                    next_probe = time.monotonic() + self._settings.probe_seconds
                    probing = asyncio.create_task(self._guarded(self._probe.probe(), "the half-open probe"))
                if started and started >= free or self._claimer.points_full:
                    await self._claimer.wait_for_room(self._settings.poll_seconds, filled=started >= free)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._settings.poll_seconds)
        finally:
            await self._claimer.drain()
            if probing is not None:
                await probing
            try:
                await self._client.close()
            finally:
                await self._adapters.close()

    async def probe(self) -> None:
        """Half-open probes now: one delivery to each switched-off point whose cool-down has passed."""
        await self._probe.probe()

    def close(self) -> None:
        """Release the threads (after :meth:`run` has returned)."""
        self._blocking_threads.shutdown(wait=True)

    @staticmethod
    async def _guarded(job: Awaitable[int | None], name: str) -> int:
        """Await ``job``; a failure (the database away, say) is one log line, and the loop goes on."""
        try:
            return await job or 0
        except Exception as exc:
            failures.failed(exc, "%s failed; it runs again at its next interval", name)
            return 0
