"""The delivery worker: PUSH deliveries and status notifications, with leases, throttle, retries and breaker.

Any number of worker processes, on any number of machines, share the queue through the database only: a task
is claimed by setting a lease on it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), and a
claim never takes a task whose lease is still running. A worker that dies leaves its leases to expire; the task
is then claimed again, so every accepted message is delivered at least once (docs/async.md says how recipients
de-duplicate).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from datetime import UTC, datetime, timedelta

from lxml import etree
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from gateway.adapters.base import AdapterAnswer
from gateway.adapters.envelope_data import adapter_payload, fault_data, wrap_data
from gateway.adapters.pool import AdapterPool
from gateway.channels.async_channel import chain_response
from gateway.delivery.bulkhead import Bulkhead
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.http_client import HttpAnswer, HttpClient
from gateway.errors import ErrorCode, GatewayError
from gateway.failure_log import FailureLog
from gateway.metrics import GatewayMetrics, process_metrics
from gateway.soap import async_messages as wire
from gateway.soap.async_endpoint import STATUS_TEXT, message_info_of, stored_data
from gateway.security.callers import ENCRYPTED_MODE, GATEWAY_SIGNS_MODE
from gateway.security.encryption import protect
from gateway.security.keys import GatewayKeys
from gateway.soap.envelope import build_envelope, find_fault, parse_envelope
from gateway.soap.values import format_datetime, new_session_id
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
from gateway.store.tasks import DEFAULT_CALL_TIMEOUT, ClaimedTask, TaskQueue
from registry.snapshot import DeliveryPointView, RegistryCache, RegistrySnapshot
from journals.times import as_utc

log = logging.getLogger(__name__)
failures = FailureLog(log)
# An adapter's backend that cannot be reached or answer in time is tried again; any other error is its answer.
TRANSIENT_ADAPTER_ERRORS = (ErrorCode.PROVIDER_UNREACHABLE, ErrorCode.PROVIDER_TIMEOUT, ErrorCode.INTERNAL_ERROR)
# A backend that stays unreachable while a result is pending is asked this many times before the message fails.
MAX_UNANSWERED_POLLS = 500
BUSY_POINT_RETRY_SECONDS = 0.5  # a point at its concurrency limit is tried again this soon
NO_SIGNING_KEY = "the gateway has no signing key configured (GATEWAY_SIGNING_KEY)"


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
        self._engine = engine
        self._registry = registry
        self._store = store
        self._guard = guard
        self._client = client
        self._settings = settings
        self._keys = keys
        self._adapters = adapters
        # This process's instruments (the app's too, when both run in one process).
        self._metrics = metrics or process_metrics(None)
        self._tasks = TaskQueue(engine, settings.lease_margin_seconds)
        self._pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="delivery")
        self._bulkhead = Bulkhead(total_limit=settings.threads)
        self._lock = threading.Lock()
        self._busy = 0

    @property
    def keys(self) -> GatewayKeys:
        """The gateway's keys this worker signs with (loaded once: a GOST PKCS#12 costs a Python KDF)."""
        return self._keys

    def poll(self) -> int:
        """Claim as many due tasks as there are idle threads and start them; returns how many were started."""
        with self._lock:
            free = self._settings.threads - self._busy
        if free <= 0:
            return 0
        snapshot = self._registry.current()
        switched_off = self._guard.switched_off()
        if switched_off:
            # Messages queued for a switched-off point, also those accepted since it went off, show as stopped.
            with self._engine.begin() as connection:
                for point_id in switched_off:
                    self._store.stop_point(connection, point_id, snapshot)
        disabled = {point.id for point in snapshot.delivery_points.values() if not point.enabled}
        tasks = self._tasks.claim_due_tasks(snapshot, free, excluded_points=set(switched_off) | disabled)
        messages = self._store.find_many([task.message_id for task in tasks]) if tasks else {}
        for task in tasks:
            with self._lock:
                self._busy += 1
            self._pool.submit(self._run, task, messages.get(task.message_id))
        return len(tasks)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._adapters.close()

    def probe(self) -> None:
        """Half-open probes: one delivery to each switched-off point whose cool-down has passed."""
        clock = datetime.now(UTC)
        snapshot = self._registry.current()
        for point_id, probe_after in self._guard.switched_off().items():
            point = snapshot.delivery_points.get(point_id)
            if point is None or probe_after is None or as_utc(probe_after) > clock:
                continue
            for task in self._tasks.claim_due_tasks(snapshot, 1, only_point=point_id):
                self._probe_with(task, point, snapshot)

    def _probe_with(self, task: ClaimedTask, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        message = self._store.find(task.message_id)
        if message is None:
            return
        outcome: AdapterAnswer | GatewayError | None = None
        if point.adapter_name is not None:
            outcome = self._ask_adapter(task, message, point)
            transient = isinstance(outcome, GatewayError) and outcome.error in TRANSIENT_ADAPTER_ERRORS
            error = str(outcome) if transient else None
        elif point.security_mode >= GATEWAY_SIGNS_MODE and self._keys.any is None:
            error = NO_SIGNING_KEY
        else:
            error = self._call(
                point,
                self._envelope(task, message, point, snapshot),
                time.monotonic() + float(point.async_call_timeout_sec or DEFAULT_CALL_TIMEOUT),
                expected=self._expected_answer(task),
            )
        with self._engine.begin() as connection:
            if error is not None:
                # Not an attempt of the message's: the point is off, the probe only tests it.
                self._guard.postpone_probe(point.id, connection)
                self._tasks.release(connection, task)
                self._metrics.delivery_attempt(point.id, "failed")
                return
            self._guard.switch_on(point.id, "Half-open probe delivered a message; delivery resumed", connection)
            self._store.resume_point(connection, point.id, snapshot)
        if outcome is not None:
            self._settle_adapter_outcome(task, message, point, snapshot, outcome)
        else:
            self._succeeded(task, self._store.find(task.message_id) or message, snapshot)

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
        snapshot = self._registry.current()
        point = snapshot.delivery_points.get(task.delivery_point_id)
        if point is None or message is None:
            self._finish(task, FAILED, "delivery point or message no longer exists")
            return
        if not self._bulkhead.try_acquire(point.id, point.max_concurrent_calls):
            # The point has its maxConcurrentCalls in flight from this process: not an attempt, not a failure.
            self._tasks.release_later(task, BUSY_POINT_RETRY_SECONDS)
            self._metrics.delivery_attempt(point.id, "throttled")
            return
        try:
            self._attempt(task, message, point, snapshot)
        finally:
            self._bulkhead.release(point.id)

    def _attempt(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        wait = self._guard.take_call_slot(point)
        if wait > 0:
            self._tasks.release_later(task, wait)  # throttled: not an attempt, not a failure
            self._metrics.delivery_attempt(point.id, "throttled")
            return
        if point.adapter_name is not None:
            self._deliver_to_adapter(task, message, point, snapshot)
            return
        if point.security_mode >= GATEWAY_SIGNS_MODE and self._keys.any is None:
            self._failed(task, message, point, snapshot, NO_SIGNING_KEY)
            return
        body = self._envelope(task, message, point, snapshot)
        timeout = float(point.async_call_timeout_sec or DEFAULT_CALL_TIMEOUT)
        error = self._call(point, body, time.monotonic() + timeout, expected=self._expected_answer(task))
        if error is None:
            self._succeeded(task, message, snapshot)
        else:
            self._failed(task, message, point, snapshot, error)

    def _deliver_to_adapter(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        """Hand a REQUEST to the point's adapter, or ask it again for a result still pending."""
        self._settle_adapter_outcome(task, message, point, snapshot, self._ask_adapter(task, message, point))

    def _ask_adapter(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView) -> AdapterAnswer | GatewayError:
        deadline = time.monotonic() + float(point.async_call_timeout_sec or DEFAULT_CALL_TIMEOUT)
        try:
            adapter = self._adapters.adapter_for(point)
            if task.kind == POLL_TASK:
                return adapter.poll(task.reference or {}, task.attempts + 1, deadline)
            return adapter.handle(adapter_payload(stored_data(message), adapter), deadline, request_key=message.message_id)
        except GatewayError as exc:
            return exc

    def _settle_adapter_outcome(
        self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot,
        outcome: AdapterAnswer | GatewayError,
    ) -> None:
        """A final answer, or the backend's refusal, goes back to the initiator as the chain's RESPONSE; a pending
        one turns the task into a POLL task due when the adapter says; an unreachable backend is retried like a
        PUSH (a pending result is asked for again, backing off, until ``MAX_UNANSWERED_POLLS``)."""
        if isinstance(outcome, GatewayError):
            if outcome.error not in TRANSIENT_ADAPTER_ERRORS:
                self._answer_initiator(task, message, snapshot, fault_data(outcome), [["adapterStatusCode", outcome.error.code]])
            elif task.kind == POLL_TASK and task.attempts < MAX_UNANSWERED_POLLS:
                self._tasks.release_later(task, self._backoff(task.attempts + 1), attempts=task.attempts + 1, last_error=str(outcome)[:1000])
                self._metrics.delivery_attempt(point.id, "pending")
            else:
                self._failed(task, message, point, snapshot, str(outcome))
            return
        answer = outcome
        if answer.pending is not None:
            attempts = task.attempts + 1 if task.kind == POLL_TASK else 0
            self._tasks.release_later(task, answer.pending.poll_after_seconds, kind=POLL_TASK, reference=answer.pending.reference, attempts=attempts)
            self._metrics.delivery_attempt(point.id, "pending")
            return
        status = [["adapterStatusCode", answer.status_code], ["adapterStatusMessage", answer.status_message]]
        self._answer_initiator(task, message, snapshot, wrap_data(answer.data), status)

    def _answer_initiator(
        self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot, data: etree._Element, properties: list[list[str]]
    ) -> None:
        try:
            self._store.accept(chain_response(message, data, properties, snapshot))
        except IntegrityError:
            log.info("the adapter's answer to %s was stored before; finishing its task", message.message_id)
        self._succeeded(task, message, snapshot)

    def _backoff(self, attempts: int) -> float:
        """The delay before attempt ``attempts + 1``: doubling from the base, capped (and the exponent with it)."""
        return min(self._settings.retry_base_seconds * 2 ** min(attempts - 1, 30), self._settings.retry_max_seconds)

    @staticmethod
    def _expected_answer(task: ClaimedTask) -> str:
        return wire.SEND_MESSAGE_RESPONSE if task.kind == MESSAGE_TASK else wire.CHANGE_STATUS_NOTIFICATION_RESPONSE

    def _envelope(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> bytes:
        """The call's envelope, signed by the gateway when the point's security mode asks for it, and encrypted
        to the recipient's registered certificate in mode 3."""
        if point.security_mode < GATEWAY_SIGNS_MODE:
            return build_envelope(self._payload(task, message))
        recipient = None
        if point.security_mode >= ENCRYPTED_MODE:
            # A message goes to its recipient; a status notification goes back to the message's sender.
            recipient_id = message.recipient_id if task.kind == MESSAGE_TASK else message.sender_id
            system = snapshot.senders.get(recipient_id)
            recipient = system.encryption_certificate() if system is not None else None
            if recipient is None:
                log.warning("delivery point %s is in mode 3 but %s has no RSA certificate registered: sent unencrypted",
                            point.id, recipient_id)
        signer = self._keys.for_gost(point.wants_gost)
        return build_envelope(self._payload(task, message), protect(signer, recipient))

    def _payload(self, task: ClaimedTask, message: StoredMessage) -> etree._Element:
        if task.kind == MESSAGE_TASK:
            return wire.build_push_send_message(message_info_of(message), stored_data(message), message.session_id)
        state = task.notified_state or message.state
        return wire.build_change_status_notification(
            notification_id=str(uuid.uuid4()),
            message_id=message.message_id,
            notification_date=format_datetime(datetime.now(UTC)),
            state=state,
            status_code=state,
            status_message=STATUS_TEXT[state],
            error=None,
            session_id=new_session_id(),
        )

    def _call(self, point: DeliveryPointView, body: bytes, deadline: float, expected: str) -> str | None:
        """POST to the recipient; None on success, else why it failed."""
        try:
            answer = self._client.post(point.url, body, deadline)
        except GatewayError as exc:
            return str(exc)
        return answer_failure(answer, expected)

    def _succeeded(self, task: ClaimedTask, message: StoredMessage, snapshot: RegistrySnapshot) -> None:
        is_message = task.kind in (MESSAGE_TASK, POLL_TASK)
        service = snapshot.services.get(message.service_id)
        # With deliveryNotification, delivered for good only when the recipient confirms (Q13).
        delivered = is_message and not (service is not None and service.delivery_notification)
        self._metrics.delivery_attempt(task.delivery_point_id, "delivered")
        self._store.complete(
            Completion(
                task_id=task.id,
                lease_owner=self._tasks.owner,
                message=message if is_message else None,
                delivered=delivered,
                notify_point_id=status_notification_point(snapshot, message) if delivered else None,
                sent_at=datetime.now(UTC),
            )
        )

    def _failed(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot, error: str) -> None:
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
                    next_attempt_at=datetime.now(UTC) + timedelta(seconds=self._backoff(attempts)),
                )
            if outcome.switched_off:
                self._store.stop_point(connection, point.id, snapshot)
        self._metrics.delivery_attempt(point.id, "failed")
        log.warning("delivery of %s to point %s failed (attempt %d): %s", task.message_id, point.id, attempts, error)

    def _finish(self, task: ClaimedTask, state: str, error: str) -> None:
        with self._engine.begin() as connection:
            self._tasks.release(connection, task, state=state, last_error=error)


def answer_failure(answer: HttpAnswer, expected: str) -> str | None:
    """Why a recipient's HTTP answer is not the ``expected`` acknowledgement, as the journals record it: the HTTP
    status when the answer is not SOAP at all, the SOAP Fault it carries, or bad XML; None when it is the answer."""
    if answer.status not in (200, 500):  # 500 is SOAP 1.1's status for a Fault; anything else is not SOAP
        return f"HTTP {answer.status} {_status_phrase(answer.status)}".rstrip()
    try:
        payload = parse_envelope(answer.body).payload
    except GatewayError as exc:
        return f"bad XML in an HTTP {answer.status} answer: {exc.data}"
    fault = find_fault(payload)
    if fault is not None:
        detail = f"{fault.detail.code} {fault.detail.message}" if fault.detail else fault.faultstring
        return f"SOAP Fault: {detail}"
    if answer.status != 200:
        return f"HTTP {answer.status} without a SOAP Fault"
    if payload.tag != expected:
        return f"unexpected answer {payload.tag}"
    return None


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
