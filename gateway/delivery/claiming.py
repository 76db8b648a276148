"""Claiming due delivery tasks and running them on the worker's thread pool, never more at once than it has
threads, nor more to one delivery point than its ``maxConcurrentCalls`` (the bulkhead)."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from gateway.delivery.bulkhead import Bulkhead
from gateway.delivery.parts import WorkerParts
from gateway.failure_log import FailureLog
from gateway.store.messages import FAILED, StoredMessage
from gateway.store.tasks import ClaimedTask

log = logging.getLogger("gateway.delivery.worker")  # the worker's log, whichever of its parts writes
failures = FailureLog(log)
BUSY_POINT_RETRY_SECONDS = 0.5  # a point at its concurrency limit is tried again this soon


class Claimer:
    """Claims due tasks for the idle threads of its pool and hands each to the caller."""

    def __init__(self, parts: WorkerParts, threads: int) -> None:
        self._parts = parts
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="delivery")
        self._bulkhead = Bulkhead(total_limit=threads)
        self._lock = threading.Lock()
        self._busy = 0

    def poll(self) -> int:
        """Claim as many due tasks as there are idle threads and start them; returns how many were started."""
        with self._lock:
            free = self._threads - self._busy
        if free <= 0:
            return 0
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
        for task in tasks:
            with self._lock:
                self._busy += 1
            self._pool.submit(self._run, task, messages.get(task.message_id))
        return len(tasks)

    def shutdown(self) -> None:
        """Wait for the deliveries in flight, then stop the pool."""
        self._pool.shutdown(wait=True)

    def _run(self, task: ClaimedTask, message: StoredMessage | None) -> None:
        try:
            self.deliver(task, message)
        except Exception as exc:
            failures.failed(exc, "delivery task %s failed unexpectedly; its lease will expire and it will be retried", task.id)
        finally:
            with self._lock:
                self._busy -= 1

    def deliver(self, task: ClaimedTask, message: StoredMessage | None) -> None:
        """Make one delivery attempt for ``task`` (its message read at claim time) and record its outcome."""
        snapshot = self._parts.registry.current()
        point = snapshot.delivery_points.get(task.delivery_point_id)
        if point is None or message is None:
            self._parts.outcomes.finish(task, FAILED, "delivery point or message no longer exists")
            return
        if not self._bulkhead.try_acquire(point.id, point.max_concurrent_calls):
            # The point has its maxConcurrentCalls in flight from this process: not an attempt, not a failure.
            self._parts.tasks.release_later(task, BUSY_POINT_RETRY_SECONDS)
            self._parts.metrics.delivery_attempt(point.id, "throttled")
            return
        try:
            self._parts.caller.attempt(task, message, point, snapshot)
        finally:
            self._bulkhead.release(point.id)
