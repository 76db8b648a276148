"""The delivery worker: PUSH deliveries and status notifications, with leases, throttle, retries and breaker.

Any number of worker processes, on any number of machines, share the queue through the database only: a task
is claimed by setting a lease on it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), and a
claim never takes a task whose lease is still running. A worker that dies leaves its leases to expire; the task
is then claimed again, so every accepted message is delivered at least once (docs/async.md says how recipients
de-duplicate).

The worker composes its parts by job: claiming (``claiming.py``: the poll, the thread pool, the bulkhead), calling
(``calling.py``: the attempt, its envelope and the recipient's answer), the outcome (``outcome.py``: done, retried,
failed, answered back to the initiator) and the breaker's half-open probe (``breaker.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.delivery.breaker import HalfOpenProbe
from gateway.delivery.calling import Caller
from gateway.delivery.claiming import Claimer
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.outcome import Outcomes
from gateway.delivery.parts import WorkerParts
from gateway.metrics import GatewayMetrics, process_metrics
from gateway.outbound.http_client import HttpClient
from gateway.security.keys import GatewayKeys
from gateway.store.messages import MessageStore
from gateway.store.tasks import TaskQueue
from registry.snapshot import RegistryCache


@dataclass(frozen=True)
class WorkerSettings:
    threads: int
    lease_margin_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float


class DeliveryWorker:
    """Claims due tasks and delivers them on a thread pool, never more at once than it has threads."""

    def __init__(
        self,
        engine: Engine,
        registry: RegistryCache,
        store: MessageStore,
        guard: DeliveryGuard,
        client: HttpClient,
        settings: WorkerSettings,
        keys: GatewayKeys,
        adapters: AdapterPool,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._keys = keys
        self._adapters = adapters
        # This process's instruments (the app's too, when both run in one process).
        metrics = metrics or process_metrics(None)
        tasks = TaskQueue(engine, settings.lease_margin_seconds)  # one lease owner for all the parts
        outcomes = Outcomes(engine, store, guard, tasks, metrics, settings.retry_base_seconds, settings.retry_max_seconds)
        caller = Caller(guard, tasks, client, keys, adapters, outcomes, metrics)
        parts = WorkerParts(engine, registry, store, guard, tasks, caller, outcomes, metrics)
        self._claimer = Claimer(parts, settings.threads)
        self._probe = HalfOpenProbe(parts)

    @property
    def keys(self) -> GatewayKeys:
        """The gateway's keys this worker signs with (loaded once: a GOST PKCS#12 costs a Python KDF)."""
        return self._keys

    def poll(self) -> int:
        """Claim as many due tasks as there are idle threads and start them; returns how many were started."""
        return self._claimer.poll()

    def probe(self) -> None:
        """Half-open probes: one delivery to each switched-off point whose cool-down has passed."""
        self._probe.probe()

    def close(self) -> None:
        self._claimer.shutdown()
        self._adapters.close()
