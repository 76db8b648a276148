"""The IAsyncChannel front door: dispatch on the Body's operation element, answer or fault, journal refusals."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from lxml import etree

from gateway.channels.async_channel import AsyncChannel
from gateway.errors import ErrorCode, GatewayError
from gateway.failure_log import FailureLog
from gateway.metrics import GatewayMetrics
from gateway.soap import async_messages as wire
from gateway.soap.async_messages import STATUS_TEXT, message_info_of, stored_data
from gateway.security.wssec import verify_envelope
from gateway.security.callers import ReceivedProtection
from gateway.security.encryption import open_envelope, protect
from gateway.security.keys import GatewayKeys
from gateway.soap.envelope import build_envelope, build_fault, parse_envelope
from gateway.soap.values import format_datetime, new_session_id
from journals.logging_journal import JournalRecord, LoggingJournal

log = logging.getLogger(__name__)
failures = FailureLog(log)

class AsyncEndpoint:
    """Handles one POSTed envelope on the asynchronous channel. ``sendMessage`` runs on the loop, its message and
    journal row committed by the process's writer while it awaits; the queries (a status, ``getMessages``, a
    delivery notification) read and change rows on blocking drivers, so they run on the loop's executor."""

    def __init__(self, channel: AsyncChannel, journal: LoggingJournal, keys: GatewayKeys, metrics: GatewayMetrics) -> None:
        self._channel = channel
        self._journal = journal
        self._keys = keys
        self._metrics = metrics

    async def handle(self, body: bytes) -> tuple[int, bytes]:
        """Process ``body``; returns the HTTP status and the response envelope."""
        session_id, received_at, started = new_session_id(), datetime.now(UTC), time.monotonic()
        operation = wire.SEND_MESSAGE
        info: wire.MessageInfo | None = None
        try:
            opened = open_envelope(parse_envelope(body), self._keys.decryption_keys)
            envelope = opened.envelope
            operation = envelope.payload_qname
            if operation == wire.SEND_MESSAGE:
                info, data = wire.read_send_message(envelope.payload)
                protection = ReceivedProtection(opened.encrypted, lambda registered: verify_envelope(opened.signed_root, registered))
                accepted = await self._channel.send_message(info, data, session_id, received_at, protection)
                answer = wire.build_send_message_response(
                    accepted.message_id, accepted.correlation_id, format_datetime(datetime.now(UTC)), session_id
                )
                signer = protect(self._keys.for_gost(accepted.caller_signed_gost), accepted.answer_recipient) if accepted.signed else None
                envelope_out = build_envelope(answer, signer)
                self._metrics.exchange("ASYNC", info.service_id, "ACCEPTED", time.monotonic() - started)
                return 200, envelope_out
            elif operation == wire.GET_MESSAGE_STATUS:
                answer = await asyncio.to_thread(self._message_status, wire.read_get_message_status(envelope.payload), session_id)
            elif operation == wire.GET_MESSAGES:
                answer = await asyncio.to_thread(self._get_messages, wire.read_get_messages(envelope.payload), session_id)
            elif operation == wire.SEND_DELIVERY_NOTIFICATION:
                notification = wire.read_send_delivery_notification(envelope.payload)
                answer = await asyncio.to_thread(self._delivery_notification, notification, session_id)
            else:
                raise GatewayError(ErrorCode.UNSUPPORTED_OPERATION, f"{operation} is not served here")
            return 200, build_envelope(answer)
        except GatewayError as exc:
            return await self._refuse(operation, exc, session_id, received_at, info, started)
        except Exception as exc:
            failures.failed(exc, "async call %s failed", session_id)
            return await self._refuse(operation, GatewayError(ErrorCode.INTERNAL_ERROR), session_id, received_at, info, started)

    async def reject(self, error: GatewayError) -> tuple[int, bytes]:
        """Refuse a request before reading it (e.g. too large), journalled like any other refusal."""
        return await self._refuse(wire.SEND_MESSAGE, error, new_session_id(), datetime.now(UTC), None, time.monotonic())

    async def _refuse(
        self, operation: str, error: GatewayError, session_id: str, received_at: datetime, info: wire.MessageInfo | None,
        started: float,
    ) -> tuple[int, bytes]:
        record = JournalRecord(
            channel="ASYNC",
            state="REJECTED",
            received_at=received_at,
            message_type=info.message_type if info else None,
            sender=info.sender_id if info else None,
            service_id=info.service_id if info else None,
            correlation_id=info.correlation_id if info else None,
            session_id=session_id,
            error_code=error.error.code,
        )
        try:
            await self._journal.write_async([record])
        except Exception as exc:
            if error.error is not ErrorCode.INTERNAL_ERROR:  # else the failure was logged already: one line a request
                failures.failed(exc, "journal write failed for async call %s", session_id)
            error = GatewayError(ErrorCode.INTERNAL_ERROR, "journal unavailable")
        self._metrics.exchange("ASYNC", record.service_id, error.error.code, time.monotonic() - started)
        fault_element = wire.FAULT_OF.get(operation, wire.FAULT_OF[wire.SEND_MESSAGE])
        return 500, build_fault(fault_element, error, datetime.now(UTC), session_id)

    def _message_status(self, query: wire.StatusQuery, session_id: str) -> etree._Element:
        message = self._channel.message_status(query.message_id, query.credentials)
        text = STATUS_TEXT[message.state] + (f": {message.last_error}" if message.last_error else "")
        return wire.build_get_message_status_response(
            state=message.state,
            status_code=message.state,
            status_message=text,
            status_date=format_datetime(message.state_changed_at),
            response_date=format_datetime(datetime.now(UTC)),
            session_id=session_id,
        )

    def _get_messages(self, query: wire.MessagesQuery, session_id: str) -> etree._Element:
        messages = self._channel.get_messages(query)
        return wire.build_get_messages_response(
            format_datetime(datetime.now(UTC)),
            session_id,
            [(message_info_of(message), stored_data(message)) for message in messages],
        )

    def _delivery_notification(self, notification: wire.DeliveryNotification, session_id: str) -> etree._Element:
        notification_id = self._channel.delivery_notification(notification)
        return wire.build_send_delivery_notification_response(notification_id, format_datetime(datetime.now(UTC)), session_id)
