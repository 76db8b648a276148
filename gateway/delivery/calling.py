"""Making one delivery attempt: the throttle's call slot, the envelope (signed and encrypted as the delivery point's
security mode says), the call to the recipient or the point's adapter, and reading the recipient's answer."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus

from lxml import etree

from gateway.adapters.base import AdapterAnswer
from gateway.adapters.envelope_data import adapter_payload
from gateway.adapters.pool import AdapterPool
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.outcome import Outcomes
from gateway.errors import ErrorCode, GatewayError
from gateway.metrics import GatewayMetrics
from gateway.outbound.async_client import AsyncHttpClient, HttpAnswer
from gateway.security.encryption import protect
from gateway.security.keys import GatewayKeys
from gateway.security.modes import delivery_policy
from gateway.soap import async_messages as wire
from gateway.soap.async_messages import STATUS_TEXT, message_info_of, stored_data
from gateway.soap.envelope import build_envelope, find_fault, parse_envelope
from gateway.soap.values import format_datetime, new_session_id
from gateway.store.messages import MESSAGE_TASK, POLL_TASK, StoredMessage
from gateway.store.tasks import DEFAULT_CALL_TIMEOUT, ClaimedTask, TaskQueue
from registry.snapshot import DeliveryPointView, RegistrySnapshot

log = logging.getLogger("gateway.delivery.worker")  # the worker's log, whichever of its parts writes
NO_SIGNING_KEY = "the gateway has no signing key configured (GATEWAY_SIGNING_KEY)"


class Caller:
    """Calls delivery points on the worker's event loop: SOAP recipients awaited through the same outbound client
    as the synchronous channel's providers, adapters (and their back offices) awaited likewise. The database work
    of a throttle slot or an outcome runs on the loop's executor, a success's completion through the process's
    group-commit writer."""

    def __init__(
        self,
        guard: DeliveryGuard,
        tasks: TaskQueue,
        client: AsyncHttpClient,
        keys: GatewayKeys,
        adapters: AdapterPool,
        outcomes: Outcomes,
        metrics: GatewayMetrics,
    ) -> None:
        self._guard = guard
        self._tasks = tasks
        self._client = client
        self._keys = keys
        self._adapters = adapters
        self._outcomes = outcomes
        self._metrics = metrics

    async def attempt(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        """One delivery attempt, unless the point's throttle says to wait; its outcome recorded."""
        if self._guard.throttles(point):
            wait = await asyncio.to_thread(self._guard.take_call_slot, point)
            if wait > 0:
                await asyncio.to_thread(self._tasks.release_later, task, wait)  # throttled: not an attempt, not a failure
                self._metrics.delivery_attempt(point.id, "throttled")
                return
        if point.adapter_name is not None:
            # A REQUEST handed to the point's adapter, or a result still pending asked for again.
            outcome = await self.ask_adapter(task, message, point)
            await asyncio.to_thread(self._outcomes.settle_adapter_outcome, task, message, point, snapshot, outcome)
            return
        error = await self.send(task, message, point, snapshot)
        if error is None:
            await self._outcomes.succeeded_async(task, message, snapshot)
        else:
            await asyncio.to_thread(self._outcomes.failed, task, message, point, snapshot, error)

    async def ask_adapter(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView) -> AdapterAnswer | GatewayError:
        """Hand the task's REQUEST to the point's adapter, or ask again for a result still pending; its error is
        returned, not raised, for the outcome to judge."""
        deadline = _call_deadline(point)
        try:
            adapter = self._adapters.adapter_for(point)
            if task.kind == POLL_TASK:
                return await adapter.poll(task.reference or {}, task.attempts + 1, deadline)
            return await adapter.handle(adapter_payload(stored_data(message), adapter), deadline, request_key=message.message_id)
        except GatewayError as exc:
            return exc

    async def send(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> str | None:
        """Send the task's call to the SOAP recipient behind ``point``; None on success, else why it failed (also
        when the point's mode wants a signature and the gateway has no key to sign with)."""
        if delivery_policy(point.security_mode).gateway_signs and self._keys.any is None:
            return NO_SIGNING_KEY
        body = self._envelope(task, message, point, snapshot)
        deadline = _call_deadline(point)
        try:
            answer = await self._client.post(point.url, body, deadline, point.tls_trust)
        except GatewayError as exc:
            return str(exc)
        return answer_failure(answer, _expected_answer(task))

    def _envelope(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> bytes:
        """The call's envelope, signed by the gateway when the point's security mode asks for it, and encrypted
        to the recipient's registered certificate in mode 3."""
        policy = delivery_policy(point.security_mode)
        if not policy.gateway_signs:
            return build_envelope(_payload(task, message))
        recipient = None
        if policy.gateway_encrypts:
            # A message goes to its recipient; a status notification goes back to the message's sender.
            recipient_id = message.recipient_id if task.kind == MESSAGE_TASK else message.sender_id
            system = snapshot.senders.get(recipient_id)
            recipient = system.encryption_certificate() if system is not None else None
            if recipient is None:
                log.warning("delivery point %s is in mode 3 but %s has no RSA certificate registered: sent unencrypted",
                            point.id, recipient_id)
        signer = self._keys.for_gost(point.wants_gost)
        return build_envelope(_payload(task, message), protect(signer, recipient))


def _call_deadline(point: DeliveryPointView) -> float:
    """When a call to ``point`` started now must be over: its ``asyncCallTimeout`` from now."""
    return time.monotonic() + float(point.async_call_timeout_sec or DEFAULT_CALL_TIMEOUT)


def _expected_answer(task: ClaimedTask) -> str:
    return wire.SEND_MESSAGE_RESPONSE if task.kind == MESSAGE_TASK else wire.CHANGE_STATUS_NOTIFICATION_RESPONSE


def _payload(task: ClaimedTask, message: StoredMessage) -> etree._Element:
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
