"""What a delivery attempt's outcome does to its task and message: done (and the message delivered), retried with
backoff, failed for good, turned into a POLL task, or answered back to the initiator (an adapter's answer)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from lxml import etree
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from gateway.adapters.base import AdapterAnswer
from gateway.adapters.envelope_data import fault_data, wrap_data
from gateway.store.chains import chain_response
from gateway.delivery.guard import DeliveryGuard
from gateway.errors import ErrorCode, GatewayError
from gateway.metrics import GatewayMetrics
from gateway.store.messages import (
    FAILED,
    MESSAGE_TASK,
    NOT_DELIVERED,
    POLL_TASK,
    Completion,
    MessageStore,
    StoredMessage,
    status_notification_point,
)
from gateway.store.tasks import ClaimedTask, TaskQueue
from registry.snapshot import DeliveryPointView, RegistrySnapshot

log = logging.getLogger("gateway.delivery.worker")  # the worker's log, whichever of its parts writes
# An adapter's backend that cannot be reached or answer in time is tried again; any other error is its answer.
TRANSIENT_ADAPTER_ERRORS = (ErrorCode.PROVIDER_UNREACHABLE, ErrorCode.PROVIDER_TIMEOUT, ErrorCode.INTERNAL_ERROR)
# A backend that stays unreachable while a result is pending is asked this many times before the message fails.
MAX_UNANSWERED_POLLS = 500


class Outcomes:
    """Records the outcomes of delivery attempts made under ``tasks``' leases."""

    def __init__(
        self,
        engine: Engine,
        store: MessageStore,
        guard: DeliveryGuard,
        tasks: TaskQueue,
        metrics: GatewayMetrics,
        retry_base_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self._engine = engine
        self._store = store
        self._guard = guard
        self._tasks = tasks
        self._metrics = metrics
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds

    def succeeded(self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot) -> None:
        """Record a delivered task: done, and its message delivered unless the recipient is still to confirm."""
        self._store.complete(self._completion(task, message, snapshot))

    async def succeeded_async(self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot) -> None:
        """:meth:`succeeded` for a coroutine: the loop goes on while the process's writer commits."""
        await self._store.complete_async(self._completion(task, message, snapshot))

    def _completion(self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot) -> Completion:
        is_message = task.kind in (MESSAGE_TASK, POLL_TASK)
        service = snapshot.services.get(message.service_id)
        # With deliveryNotification, delivered for good only when the recipient confirms (Q13).
        delivered = is_message and not (service is not None and service.delivery_notification)
        self._metrics.delivery_attempt(task.delivery_point_id, "delivered")
        return Completion(
            task_id=task.id,
            lease_owner=self._tasks.owner,
            message=message if is_message else None,
            delivered=delivered,
            notify_point_id=status_notification_point(snapshot, message) if delivered else None,
            sent_at=datetime.now(UTC),
        )

    def failed(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot, error: str) -> None:
        """Record a failed attempt: counted by the point's breaker, then retried later or, past the point's
        retries, failed for good with its message NOT_DELIVERED."""
        attempts = task.attempts + 1
        with self._engine.begin() as connection:
            outcome = self._guard.record_failure(point, error, connection)
            if attempts > point.retry_count:
                still_ours = self._tasks.release(connection, task, state=FAILED, attempts=attempts, last_error=error[:1000])
                if still_ours and task.kind in (MESSAGE_TASK, POLL_TASK):
                    self._store.change_state(connection, message, NOT_DELIVERED, status_notification_point(snapshot, message), error=error)
            else:
                self._tasks.release(
                    connection, task, attempts=attempts, last_error=error[:1000],
                    next_attempt_at=datetime.now(UTC) + timedelta(seconds=self.backoff(attempts)),
                )
            if outcome.switched_off:
                self._store.stop_point(connection, point.id, snapshot)
        self._metrics.delivery_attempt(point.id, "failed")
        log.warning("delivery of %s to point %s failed (attempt %d): %s", task.message_id, point.id, attempts, error)

    def finish(self, task: ClaimedTask, state: str, error: str) -> None:
        """End ``task`` in ``state`` without touching its message (a task with nothing left to deliver)."""
        with self._engine.begin() as connection:
            self._tasks.release(connection, task, state=state, last_error=error)

    def settle_adapter_outcome(
        self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot,
        outcome: AdapterAnswer | GatewayError,
    ) -> None:
        """A final answer, or the backend's refusal, goes back to the initiator as the chain's RESPONSE; a pending
        one turns the task into a POLL task due when the adapter says; an unreachable backend is retried like a
        PUSH (a pending result is asked for again, backing off, until ``MAX_UNANSWERED_POLLS``)."""
        if isinstance(outcome, GatewayError):
            if outcome.error not in TRANSIENT_ADAPTER_ERRORS:
                self.answer_initiator(task, message, snapshot, fault_data(outcome), [["adapterStatusCode", outcome.error.code]])
            elif task.kind == POLL_TASK and task.attempts < MAX_UNANSWERED_POLLS:
                self._tasks.release_later(task, self.backoff(task.attempts + 1), attempts=task.attempts + 1, last_error=str(outcome)[:1000])
                self._metrics.delivery_attempt(point.id, "pending")
            else:
                self.failed(task, message, point, snapshot, str(outcome))
            return
        answer = outcome
        if answer.pending is not None:
            attempts = task.attempts + 1 if task.kind == POLL_TASK else 0
            self._tasks.release_later(task, answer.pending.poll_after_seconds, kind=POLL_TASK, reference=answer.pending.reference, attempts=attempts)
            self._metrics.delivery_attempt(point.id, "pending")
            return
        status = [["adapterStatusCode", answer.status_code], ["adapterStatusMessage", answer.status_message]]
        self.answer_initiator(task, message, snapshot, wrap_data(answer.data), status)

    def answer_initiator(
        self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot, data: etree._Element, properties: list[list[str]]
    ) -> None:
        """Store the adapter's final answer as the chain's RESPONSE to the initiator (once, however often asked),
        then record the task as delivered."""
        try:
            self._store.accept(chain_response(message, data, properties, snapshot))
        except IntegrityError:
            log.info("the adapter's answer to %s was stored before; finishing its task", message.message_id)
        self.succeeded(task, message, snapshot)

    def backoff(self, attempts: int) -> float:
        """The delay before attempt ``attempts + 1``: doubling from the base, capped (and the exponent with it)."""
        return min(self._retry_base * 2 ** min(attempts - 1, 30), self._retry_max)
