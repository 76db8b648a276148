"""Claiming due delivery tasks and running each as a task on the worker's event loop, never more at once than the
worker's concurrency, nor more to one delivery point than its ``maxConcurrentCalls`` (the bulkhead)."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.delivery.bulkhead import Bulkhead
from gateway.delivery.parts import WorkerParts
from gateway.failure_log import FailureLog
from gateway.store.messages import FAILED, StoredMessage
from gateway.store.tasks import ClaimedTask
from registry.snapshot import RegistrySnapshot

log = logging.getLogger("gateway.delivery.worker")  # the worker's log, whichever of its parts writes
failures = FailureLog(log)
BUSY_POINT_RETRY_SECONDS = 0.5  # a point at its concurrency limit is tried again this soon
# A poll after a full claim waits until this share of the concurrency is free again: claims come in batches (one
# transaction for many tasks) rather than one query per finished delivery.
REFILL_SHARE = 4


class Claimer:
    """Claims due tasks for the free delivery slots and runs each on the loop."""

    def __init__(self, parts: WorkerParts, concurrency: int) -> None:
        self._parts = parts
        self._concurrency = concurrency
        self._refill_at = max(1, concurrency // REFILL_SHARE)
        self._bulkhead = Bulkhead(total_limit=concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()

    @property
    def free(self) -> int:
        """Delivery slots not taken."""
        return self._concurrency - len(self._in_flight)

    async def poll(self) -> int:
        """Claim as many due tasks as there are free slots and start them; returns how many were started."""
        free = self.free
        if free <= 0:
            return 0
        snapshot, tasks, messages = await asyncio.to_thread(self._claim, free)
        for task in tasks:
            running = asyncio.create_task(self._run(task, messages.get(task.message_id), snapshot))
            self._in_flight.add(running)
            running.add_done_callback(self._finished)
        return len(tasks)

    async def wait_for_room(self, timeout: float) -> None:
        """Return once a batch's worth of slots is free again, or after ``timeout`` seconds."""
        if self.free >= self._refill_at:
            return
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout)

    async def drain(self) -> None:
        """Wait for the deliveries in flight."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _claim(self, free: int) -> tuple[RegistrySnapshot, list[ClaimedTask], dict[str, StoredMessage]]:
        """The registry, up to ``free`` leased tasks and their messages: the poll's database work, in a thread."""
        snapshot = self._parts.registry.current()
        switched_off = self._parts.guard.switched_off()
        if switched_off:
            # Messages queued for a switched-off point, also those accepted since it went off, show as stopped.
            with self._parts.engine.begin() as connection:
                for point_id in switched_off:
                    self._parts.store.stop_point(connection, point_id, snapshot)
        disabled = {point.id for point in snapshot.delivery_points.values() if not point.enabled}
        tasks = self._parts.tasks.claim_due_tasks(snapshot, free, excluded_points=set(switched_off) | disabled)
        messages = self._parts.store.find_many([task.message_id for task in tasks]) if tasks else {}
        return snapshot, tasks, messages

    def _finished(self, running: asyncio.Task[None]) -> None:
        self._in_flight.discard(running)
        if self.free >= self._refill_at:
            self._room.set()

    async def _run(self, task: ClaimedTask, message: StoredMessage | None, snapshot: RegistrySnapshot) -> None:
        try:
            await self.deliver(task, message, snapshot)
        except Exception as exc:
            failures.failed(exc, "delivery task %s failed unexpectedly; its lease will expire and it will be retried", task.id)

    async def deliver(self, task: ClaimedTask, message: StoredMessage | None, snapshot: RegistrySnapshot) -> None:
        """Make one delivery attempt for ``task`` (its message and the registry read at claim time) and record its
        outcome."""
        point = snapshot.delivery_points.get(task.delivery_point_id)
        if point is None or message is None:
            await asyncio.to_thread(self._parts.outcomes.finish, task, FAILED, "delivery point or message no longer exists")
            return
        if not self._bulkhead.try_acquire(point.id, point.max_concurrent_calls):
            # The point has its maxConcurrentCalls in flight from this process: not an attempt, not a failure.
            await asyncio.to_thread(self._parts.tasks.release_later, task, BUSY_POINT_RETRY_SECONDS)
            self._parts.metrics.delivery_attempt(point.id, "throttled")
            return
        try:
            await self._parts.caller.attempt(task, message, point, snapshot)
        finally:
            self._bulkhead.release(point.id)
