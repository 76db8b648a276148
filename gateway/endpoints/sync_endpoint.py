"""The ISyncChannel front door: envelope in, SendMessageResponse or SendMessageFault out, journal always."""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from gateway.channels.sync_call import SyncChannel, SyncExchange
from gateway.errors import ErrorCode, GatewayError
from gateway.failure_log import FailureLog
from gateway.metrics import GatewayMetrics
from gateway.security.wssec import verify_envelope
from gateway.security.callers import ReceivedProtection
from gateway.security.encryption import open_envelope, protect
from gateway.security.keys import GatewayKeys
from gateway.soap.envelope import build_envelope, build_fault, parse_envelope
from gateway.soap.sync_messages import (
    SEND_MESSAGE,
    SEND_MESSAGE_FAULT,
    build_send_message_response,
    read_send_message,
)
from gateway.soap.values import new_session_id
from journals.logging_journal import LoggingJournal

log = logging.getLogger(__name__)
failures = FailureLog(log)


class SyncEndpoint:
    """Handles one POSTed envelope on the synchronous channel. The answer is signed in the algorithm the caller
    signed with; when the caller's signature was not checked, in GOST on ``/bip-sync-wss-gost/``
    (``prefers_gost``) and RSA elsewhere."""

    def __init__(
        self,
        channel: SyncChannel,
        journal: LoggingJournal,
        budget_seconds: float,
        keys: GatewayKeys,
        metrics: GatewayMetrics,
        prefers_gost: bool = False,
    ) -> None:
        self._channel = channel
        self._journal = journal
        self._budget = budget_seconds
        self._keys = keys
        self._metrics = metrics
        self._prefers_gost = prefers_gost

    async def handle(self, body: bytes) -> tuple[int, bytes]:
        """Process ``body``; returns the HTTP status and the response envelope."""
        exchange = SyncExchange(session_id=new_session_id())
        deadline = exchange.started + self._budget
        try:
            opened = open_envelope(parse_envelope(body), self._keys.decryption_keys)
            envelope = opened.envelope
            if envelope.payload_qname != SEND_MESSAGE:
                raise GatewayError(ErrorCode.UNSUPPORTED_OPERATION, f"{envelope.payload_qname} is not served here")
            request = read_send_message(envelope.payload)
            protection = ReceivedProtection(opened.encrypted, lambda registered: verify_envelope(opened.signed_root, registered))
            response = await self._channel.send_message(request, exchange, deadline, protection)
            gost = self._prefers_gost if exchange.caller_signed_gost is None else exchange.caller_signed_gost
            signer = protect(self._keys.for_gost(gost), exchange.answer_recipient) if exchange.sign_answer else None
            answer = build_envelope(build_send_message_response(response, exchange.session_id), signer)
            status = 200
        except GatewayError as exc:
            exchange.error = exc
            status, answer = 500, self._fault(exc, exchange.session_id)
            if exc.error is ErrorCode.INTERNAL_ERROR and exc.__cause__ is not None:  # the gateway's own failure
                failures.failed(exc.__cause__, "sync exchange %s failed (%s)", exchange.session_id, exc.error.code)
        except Exception as exc:
            failures.failed(exc, "sync exchange %s failed", exchange.session_id)
            exchange.error = GatewayError(ErrorCode.INTERNAL_ERROR)
            status, answer = 500, self._fault(exchange.error, exchange.session_id)
        return await self._journalled(exchange, status, answer)

    async def reject(self, error: GatewayError) -> tuple[int, bytes]:
        """Refuse a request before reading it (e.g. too large), journalled like any other refusal."""
        exchange = SyncExchange(session_id=new_session_id(), error=error)
        return await self._journalled(exchange, 500, self._fault(error, exchange.session_id))

    async def _journalled(self, exchange: SyncExchange, status: int, answer: bytes) -> tuple[int, bytes]:
        # Nothing leaves the gateway unjournalled: if the journal cannot be written, the caller gets a fault.
        records = exchange.journal_records(datetime.now(UTC))
        outcome = records[0].error_code or records[0].state
        try:
            await self._journal.write_async(records)
        except Exception as exc:
            if exchange.error is None or exchange.error.error is not ErrorCode.INTERNAL_ERROR:  # else logged already
                failures.failed(exc, "journal write failed for sync exchange %s", exchange.session_id)
            outcome = ErrorCode.INTERNAL_ERROR.code
            status, answer = 500, self._fault(GatewayError(ErrorCode.INTERNAL_ERROR, "journal unavailable"), exchange.session_id)
        self._metrics.exchange("SYNC", records[0].service_id, outcome, time.monotonic() - exchange.started)
        return status, answer

    @staticmethod
    def _fault(error: GatewayError, session_id: str) -> bytes:
        return build_fault(SEND_MESSAGE_FAULT, error, datetime.now(UTC), session_id)
