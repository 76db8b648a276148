"""The synchronous channel's use case: authenticate, authorise, route, journal, call the provider.

A coroutine on the serving process's event loop: the exchange awaits its provider, holding no thread.
The journal's REQUEST row (state ON_DELIVERY) is durable before the provider is called: if it cannot be written the
provider is not called and the caller gets SCE909, so a retrying caller never runs a service that left no trace.
The outcome rows (the REQUEST's final state and the RESPONSE) follow when the exchange ends.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cryptography import x509

from gateway.errors import ErrorCode, GatewayError
from gateway.security.callers import CallerSignatures, ReceivedProtection, answer_recipient
from gateway.security.modes import delivery_policy, service_policy
from gateway.security.passwords import SenderAuthenticator
from gateway.security.public_keys import is_gost
from gateway.soap.sync_messages import SyncRequest, SyncResponse
from gateway.store.messages import ON_DELIVERY
from journals.logging_journal import JournalRecord, LoggingJournal
from gateway.channels.routing import resolve_delivery_point
from registry.snapshot import DeliveryPointView, RegistryCache

log = logging.getLogger(__name__)
SYNC_CALL_MODE = 1


class ProviderCaller(Protocol):
    """Delivers a sync request to a delivery point and returns the provider's answer."""

    async def call(
        self,
        point: DeliveryPointView,
        request: SyncRequest,
        session_id: str,
        deadline: float,
        recipient: x509.Certificate | None = None,
    ) -> SyncResponse: ...

    def admit(self, point: DeliveryPointView) -> Callable[[], None]:
        """A slot of ``point``'s bulkhead (its release), or GatewayError(PROVIDER_BUSY) at once."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SyncExchange:
    """One exchange as the journal sees it, filled in as it goes."""

    session_id: str
    received_at: datetime = field(default_factory=_now)
    started: float = field(default_factory=time.monotonic)
    request: SyncRequest | None = None
    recipient: str | None = None
    forwarded_at: datetime | None = None
    answered_at: datetime | None = None
    response: SyncResponse | None = None
    error: GatewayError | None = None
    sign_answer: bool = False
    answer_recipient: x509.Certificate | None = None  # security mode 3: the caller's certificate to encrypt to
    caller_signed_gost: bool | None = None  # known when the caller's signature was checked: answer in its algorithm

    def _common(self) -> dict[str, object]:
        request = self.request
        return dict(
            channel="SYNC",
            service_id=request.service_id if request else None,
            route_id=request.route_id if request else None,
            session_id=self.session_id,
            correlation_id=request.correlation_id if request else None,
        )

    def _request_record(self, state: str, error_code: str | None = None) -> JournalRecord:
        request = self.request
        return JournalRecord(
            message_id=request.message_id if request else None,
            received_at=self.received_at,
            sent_at=self.forwarded_at,
            message_type="REQUEST",
            sender=request.sender_id if request else None,
            recipient=self.recipient,
            state=state,
            error_code=error_code,
            duration_ms=(time.monotonic() - self.started) * 1000,
            **self._common(),  # type: ignore[arg-type]
        )

    def forwarding_record(self) -> JournalRecord:
        """The REQUEST row written before the provider is called: received, sent on, outcome not yet known."""
        return self._request_record(ON_DELIVERY)

    def journal_records(self, finished_at: datetime) -> list[JournalRecord]:
        """The request row with the exchange's outcome, and the response row when the provider answered (answer
        or fault)."""
        request = self.request
        error_code = self.error.error.code if self.error else None
        if self.forwarded_at is None:
            state = "REJECTED"
        elif self.answered_at is None:
            state = "NOT_DELIVERED"
        else:
            state = "DELIVERED"
        records = [self._request_record(state, error_code)]
        if self.answered_at is not None:
            records.append(
                JournalRecord(  # the duration as on the request row: receipt to answer
                    message_id=self.response.message_id if self.response else None,
                    received_at=self.answered_at,
                    sent_at=finished_at,
                    message_type="RESPONSE",
                    sender=self.recipient,
                    recipient=request.sender_id if request else None,
                    state="DELIVERED",
                    error_code=error_code,
                    duration_ms=records[0].duration_ms,
                    **self._common(),  # type: ignore[arg-type]
                )
            )
        return records




class SyncChannel:
    """``SendMessage`` on the synchronous channel, free of SOAP details."""

    def __init__(
        self,
        registry: RegistryCache,
        authenticator: SenderAuthenticator,
        provider: ProviderCaller,
        signatures: CallerSignatures,
        can_sign: bool,
        journal: LoggingJournal,
    ) -> None:
        self._journal = journal
        self._registry = registry
        self._authenticator = authenticator
        self._provider = provider
        self._signatures = signatures
        self._can_sign = can_sign

    async def send_message(
        self, request: SyncRequest, exchange: SyncExchange, deadline: float, protection: ReceivedProtection
    ) -> SyncResponse:
        """Check the sender, its rights and (where the service demands it) its transport signature, forward to
        the provider within ``deadline``, return the answer."""
        exchange.request = request
        snapshot = self._registry.current()
        sender = snapshot.senders.get(request.sender_id)
        if not self._authenticator.authenticate(sender, request.password):
            raise GatewayError(ErrorCode.BAD_CREDENTIALS)
        service = snapshot.services.get(request.service_id)
        if service is None:
            raise GatewayError(ErrorCode.UNKNOWN_SERVICE, f"no service {request.service_id!r}")
        exchange.recipient = service.owner_sender_id
        if request.sender_id not in service.users:
            raise GatewayError(ErrorCode.SENDER_NOT_ALLOWED, f"{request.sender_id} may not call {service.key}")
        if not service.offers_sync():
            raise GatewayError(ErrorCode.SERVICE_NOT_ON_CHANNEL, f"{service.key} is an asynchronous service")
        policy = service_policy(service.security_mode)
        if policy.caller_signs:
            caller_certificate = await self._signatures.check(
                snapshot, sender, request.message_id, protection, policy, service.revocation_fail_open
            )
            exchange.caller_signed_gost = is_gost(caller_certificate)
            if policy.gateway_encrypts_answer:
                exchange.answer_recipient = answer_recipient(sender, caller_certificate)
        point = resolve_delivery_point(service, request.route_id, snapshot.delivery_points)
        forwarding = delivery_policy(point.security_mode)
        if (policy.gateway_signs_answer or forwarding.gateway_signs) and not self._can_sign:
            raise GatewayError(ErrorCode.INTERNAL_ERROR, "the gateway has no signing key configured (GATEWAY_SIGNING_KEY)")
        exchange.sign_answer = policy.gateway_signs_answer
        if point.call_mode != SYNC_CALL_MODE:
            raise GatewayError(ErrorCode.SERVICE_NOT_ON_CHANNEL, f"delivery point {point.id} is asynchronous")
        if not point.enabled:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"delivery point {point.id} is switched off")
        provider_certificate = None
        if forwarding.gateway_encrypts and (owner := snapshot.senders.get(service.owner_sender_id)) is not None:
            provider_certificate = owner.encryption_certificate()
            if provider_certificate is None:
                log.warning("delivery point %s is in mode 3 but %s has no RSA certificate registered: sent unencrypted",
                            point.id, owner.sender_id)
        release = self._provider.admit(point)  # before forwarding: a point at its limit is a REJECTED refusal
        try:
            await self._journal_forwarding(exchange)
            response = await self._provider.call(point, request, exchange.session_id, deadline, provider_certificate)
        except GatewayError as exc:
            if exc.error in (ErrorCode.PROVIDER_FAULT, ErrorCode.PROVIDER_RESPONSE_INVALID):
                exchange.answered_at = _now()
            raise
        finally:
            release()
        exchange.answered_at = _now()
        exchange.response = response
        return response

    async def _journal_forwarding(self, exchange: SyncExchange) -> None:
        """Make the REQUEST row durable before the provider is called, or refuse to call it."""
        exchange.forwarded_at = _now()
        try:
            await self._journal.write_async([exchange.forwarding_record()])
        except Exception as exc:
            exchange.forwarded_at = None
            raise GatewayError(ErrorCode.INTERNAL_ERROR, "journal unavailable; the request was not forwarded") from exc
