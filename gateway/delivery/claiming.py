"""Claiming due delivery tasks and running each as a task on the worker's event loop, never more at once than the
worker's concurrency, nor more to one delivery point than its ``maxConcurrentCalls`` (the bulkhead).

A claim asks for no more tasks than there are free slots, in the worker and at the points: a point whose
``maxConcurrentCalls`` are all in flight from this worker is left out of the claim, and the claim's size is at
most the slots free at the other points. Tasks of one point beyond its free slots (one claim across points cannot
count per point) go back to the queue at once, in one transaction, due as they were. From then on that point is
a backlogged one: its tasks are claimed on their own, never more than its free slots, and left out of the claim
across points, so that its old queue never stands at the head of everyone else's; the next claim comes when it
has half its slots free.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from gateway.delivery.bulkhead import Bulkhead
from gateway.delivery.parts import WorkerParts
from gateway.failure_log import FailureLog
from gateway.store.messages import FAILED, StoredMessage
from gateway.store.tasks import ClaimedTask
from registry.snapshot import DeliveryPointView, RegistrySnapshot

log = logging.getLogger("gateway.delivery.worker")  # the worker's log, whichever of its parts writes
failures = FailureLog(log)
# A poll after a full claim waits until this share of the concurrency is free again: claims come in batches (one
# transaction for many tasks) rather than one query per finished delivery.
REFILL_SHARE = 4


@dataclass(frozen=True)
class _Claim:
    """What one claim brought: the registry it was made under, the tasks leased and their messages."""

    snapshot: RegistrySnapshot
    tasks: list[ClaimedTask]
    messages: dict[str, StoredMessage]
    full_points: dict[int, int]  # the points with no free slot when the claim was made, with their maxConcurrentCalls


class Claimer:
    """Claims due tasks for the free delivery slots and runs each on the loop."""

    def __init__(self, parts: WorkerParts, concurrency: int) -> None:
        self._parts = parts
        self._concurrency = concurrency
        self._refill_at = max(1, concurrency // REFILL_SHARE)
        self._bulkhead = Bulkhead(total_limit=concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        # Points whose queue waits for their slots: a claim is worth making again when one has no more than this
        # many calls in flight (half its slots free), so a busy point's tasks are claimed a few at a time, not one.
        self._waiting_points: dict[int, int] = {}
        self._filled = False

    @property
    def free(self) -> int:
        """Delivery slots not taken."""
        return self._concurrency - len(self._in_flight)

    @property
    def points_full(self) -> bool:
        """Whether the last claim found a point with no free slot, filled one, or brought more of its tasks than it
        had slots."""
        return bool(self._waiting_points)

    async def poll(self) -> int:
        """Claim as many due tasks as there are free slots and start them; returns how many were started."""
        free = self.free
        if free <= 0:
            return 0
        claim = await asyncio.to_thread(self._claim, free, set(self._waiting_points))
        refused = []
        full = dict(claim.full_points)
        for task in claim.tasks:
            point = claim.snapshot.delivery_points.get(task.delivery_point_id)
            if point is None:
                self._start(task, claim, None)
            elif self._bulkhead.try_acquire(point.id, point.max_concurrent_calls):
                self._start(task, claim, point)
                if self._bulkhead.in_flight(point.id) >= point.max_concurrent_calls:
                    full[point.id] = point.max_concurrent_calls
            else:
                refused.append(task)
        self._waiting_points = {point_id: limit - max(1, limit // 2) for point_id, limit in full.items()}
        if refused:
            # Not an attempt, not a failure: back in the queue as they were, for when the point has a free slot.
            await asyncio.to_thread(self._parts.tasks.give_back, refused)
            for task in refused:
                self._parts.metrics.delivery_attempt(task.delivery_point_id, "throttled")
        return len(claim.tasks) - len(refused)

    async def wait_for_room(self, timeout: float, filled: bool) -> None:
        """Wait until the next claim is worth making, at most ``timeout`` seconds: after a claim that ``filled``
        every slot, until a batch's worth is free again; else until a point that was full has half its slots
        free."""
        self._filled = filled
        self._room.clear()
        if self._worth_claiming():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout)

    async def drain(self) -> None:
        """Wait for the deliveries in flight."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _claim(self, free: int, backlogged: set[int]) -> _Claim:
        """The poll's database work, in a thread: the registry, up to ``free`` leased tasks of points with a free
        slot (a ``backlogged`` point's claimed on their own, at most its free slots), and their messages."""
        snapshot = self._parts.registry.current()
        switched_off = self._parts.guard.switched_off()
        if switched_off:
            # Messages queued for a switched-off point, also those accepted since it went off, show as stopped.
            with self._parts.engine.begin() as connection:
                for point_id in switched_off:
                    self._parts.store.stop_point(connection, point_id, snapshot)
        excluded = set(switched_off)
        room, full, own_claims = 0, {}, {}
        for point in snapshot.delivery_points.values():
            if point.id in excluded:
                continue
            slots = point.max_concurrent_calls - self._bulkhead.in_flight(point.id) if point.enabled else 0
            if slots <= 0 or point.id in backlogged:
                excluded.add(point.id)
            if slots <= 0 and point.enabled:
                full[point.id] = point.max_concurrent_calls
            elif slots > 0 and point.id in backlogged:
                own_claims[point.id] = slots
            elif slots > 0:
                room += slots
        tasks: list[ClaimedTask] = []
        for point_id, slots in own_claims.items():
            if len(tasks) < free:
                tasks += self._parts.tasks.claim_due_tasks(snapshot, min(slots, free - len(tasks)), only_point=point_id)
        # At least one: a task whose point left the registry is claimed all the same, to be finished as failed.
        limit = min(free - len(tasks), max(room, 1))
        if limit > 0:
            tasks += self._parts.tasks.claim_due_tasks(snapshot, limit, excluded_points=excluded)
        messages = self._parts.store.find_many([task.message_id for task in tasks]) if tasks else {}
        return _Claim(snapshot, tasks, messages, full)

    def _start(self, task: ClaimedTask, claim: _Claim, point: DeliveryPointView | None) -> None:
        running = asyncio.create_task(self._run(task, claim.messages.get(task.message_id), point, claim.snapshot))
        self._in_flight.add(running)
        running.add_done_callback(self._finished)

    def _finished(self, running: asyncio.Task[None]) -> None:
        self._in_flight.discard(running)
        if self._worth_claiming():
            self._room.set()

    def _worth_claiming(self) -> bool:
        if self._filled:
            return self.free >= self._refill_at
        return any(self._bulkhead.in_flight(point_id) <= limit for point_id, limit in self._waiting_points.items())

    async def _run(
        self, task: ClaimedTask, message: StoredMessage | None, point: DeliveryPointView | None, snapshot: RegistrySnapshot
    ) -> None:
        """Deliver ``task`` (its message and the registry read at claim time; ``point``'s slot taken, when the
        point still exists) and record the outcome; give the slot back."""
        try:
            if point is None or message is None:
                await asyncio.to_thread(self._parts.outcomes.finish, task, FAILED, "delivery point or message no longer exists")
            else:
                await self._parts.caller.attempt(task, message, point, snapshot)
        except Exception as exc:
            failures.failed(exc, "delivery task %s failed unexpectedly; its lease will expire and it will be retried", task.id)
        finally:
            if point is not None:
                self._bulkhead.release(point.id)
