"""The asynchronous channel's use cases: accept a message, report its status, hand out messages to PULL
recipients, record delivery notifications. Free of SOAP details."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from lxml import etree

from gateway.channels.routing import resolve_delivery_point
from gateway.errors import ErrorCode, GatewayError
from gateway.security.callers import CallerSignatures, ReceivedProtection, answer_recipient
from gateway.security.modes import service_policy
from gateway.security.passwords import SenderAuthenticator
from gateway.security.public_keys import is_gost
from gateway.soap.async_messages import ACCEPTED, NOT_ACCEPTED, Credentials, DeliveryNotification, MessageInfo, MessagesQuery
from gateway.store.chains import message_row
from gateway.store.messages import (
    DELIVERED,
    NOT_DELIVERED,
    ON_DELIVERY,
    Acceptance,
    MessageStore,
    StoredMessage,
    journal_record,
    new_message_id,
    now,
    status_notification_point,
)
from registry.snapshot import RegistrySnapshot, RegistryCache, ServiceView

ASYNC_CALL_MODE = 2


@dataclass(frozen=True)
class Accepted:
    message_id: str
    correlation_id: str
    signed: bool
    answer_recipient: x509.Certificate | None = None  # security mode 3: the caller's certificate to encrypt to
    caller_signed_gost: bool = False  # the answer goes in the algorithm the caller signed with


class AsyncChannel:
    """The asynchronous channel over the message store."""

    def __init__(
        self,
        registry: RegistryCache,
        authenticator: SenderAuthenticator,
        store: MessageStore,
        default_amount: int,
        signatures: CallerSignatures,
        can_sign: bool,
    ) -> None:
        self._registry = registry
        self._authenticator = authenticator
        self._store = store
        self._default_amount = default_amount
        self._signatures = signatures
        self._can_sign = can_sign

    def _authenticate(self, snapshot: RegistrySnapshot, credentials: Credentials) -> str:
        if credentials.sender_id is None or not self._authenticator.authenticate(
            snapshot.senders.get(credentials.sender_id), credentials.password
        ):
            raise GatewayError(ErrorCode.BAD_CREDENTIALS)
        return credentials.sender_id

    @staticmethod
    def _async_service(snapshot: RegistrySnapshot, service_id: str) -> ServiceView:
        service = snapshot.services.get(service_id)
        if service is None:
            raise GatewayError(ErrorCode.UNKNOWN_SERVICE, f"no service {service_id!r}")
        if not service.offers_async():
            raise GatewayError(ErrorCode.SERVICE_NOT_ON_CHANNEL, f"{service.key} is a synchronous service")
        return service

    async def send_message(
        self,
        info: MessageInfo,
        data: etree._Element,
        session_id: str,
        received_at: datetime,
        protection: ReceivedProtection,
    ) -> Accepted:
        """Accept a message: check sender, its signature where the service demands one, access and chain, and
        store it durably with its journal row. ``accepted.signed`` says whether the answer is to be signed. A
        coroutine: the database's work is awaited (the commit by the process's writer, a chain's lookup on the
        loop's executor)."""
        snapshot = self._registry.current()
        sender_id = self._authenticate(snapshot, Credentials(info.sender_id, info.password))
        service = self._async_service(snapshot, info.service_id)
        policy = service_policy(service.security_mode)
        if policy.gateway_signs_answer and not self._can_sign:
            raise GatewayError(ErrorCode.INTERNAL_ERROR, "the gateway has no signing key configured (GATEWAY_SIGNING_KEY)")
        recipient_certificate = None
        caller_gost = False
        if policy.caller_signs:
            sender = snapshot.senders[sender_id]
            caller_certificate = await self._signatures.check(
                snapshot, sender, None, protection, policy, service.revocation_fail_open
            )
            caller_gost = is_gost(caller_certificate)
            if policy.gateway_encrypts_answer:
                recipient_certificate = answer_recipient(sender, caller_certificate)
        message_id = new_message_id()
        if info.message_type == "REQUEST":
            if sender_id not in service.users:
                raise GatewayError(ErrorCode.SENDER_NOT_ALLOWED, f"{sender_id} may not call {service.key}")
            correlation_id = message_id
            recipient_id = service.owner_sender_id
            mode = service.send_mode or "PULL"
            point_id = self._request_point(snapshot, service, info.route_id) if mode == "PUSH" else None
        else:
            if info.correlation_id is None:
                raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"a {info.message_type} must name its chain in correlationId")
            opening = await asyncio.to_thread(self._store.chain_request, info.correlation_id)
            if opening is None or opening.service_id != service.key:
                raise GatewayError(ErrorCode.UNKNOWN_CHAIN, f"no chain {info.correlation_id!r} of service {service.key}")
            if sender_id != opening.recipient_id:
                raise GatewayError(ErrorCode.SENDER_NOT_ALLOWED, f"{sender_id} is not the provider of chain {info.correlation_id}")
            correlation_id = info.correlation_id
            recipient_id = opening.sender_id
            recipient = snapshot.senders.get(recipient_id)
            point_id = recipient.response_delivery_point_id if recipient else None
            mode = "PUSH" if point_id is not None else "PULL"
        message = message_row(
            message_id=message_id,
            correlation_id=correlation_id,
            service_id=service.key,
            message_type=info.message_type,
            route_id=info.route_id,
            message_date=info.message_date,
            sender_id=sender_id,
            recipient_id=recipient_id,
            properties=[[p.key, p.value] for p in info.properties],
            data=data,
            delivery_mode=mode,
            session_id=session_id,
        )
        record = journal_record(message, ON_DELIVERY, received_at=received_at)
        await self._store.accept_async(Acceptance(message=message, journal=record, push_point_id=point_id))
        return Accepted(
            message_id, correlation_id, signed=policy.gateway_signs_answer,
            answer_recipient=recipient_certificate, caller_signed_gost=caller_gost,
        )

    @staticmethod
    def _request_point(snapshot: RegistrySnapshot, service: ServiceView, route_id: str | None) -> int:
        point = resolve_delivery_point(service, route_id, snapshot.delivery_points)
        if point.call_mode != ASYNC_CALL_MODE:
            raise GatewayError(ErrorCode.SERVICE_NOT_ON_CHANNEL, f"delivery point {point.id} is synchronous")
        return point.id

    def message_status(self, message_id: str, credentials: Credentials) -> StoredMessage:
        """The message, if the caller is its sender or its recipient."""
        snapshot = self._registry.current()
        caller = self._authenticate(snapshot, credentials)
        message = self._store.find(message_id)
        if message is None or caller not in (message.sender_id, message.recipient_id):
            raise GatewayError(ErrorCode.UNKNOWN_MESSAGE, f"no message {message_id!r} of {caller}")
        return message

    def get_messages(self, query: MessagesQuery) -> list[StoredMessage]:
        """Messages addressed to the caller under the three selection rules, oldest first."""
        snapshot = self._registry.current()
        caller = self._authenticate(snapshot, query.credentials)
        service = self._async_service(snapshot, query.service_id)
        amount = query.amount or self._default_amount
        messages = self._store.select_for_recipient(caller, service.key, query.message_id, query.correlation_id, amount)
        if messages:
            notify = {m.message_id: status_notification_point(snapshot, m) for m in messages}
            self._store.mark_fetched(messages, delivered=not service.delivery_notification, notify_point_of=notify)
        return messages

    def delivery_notification(self, notification: DeliveryNotification) -> str:
        """Record a recipient's MESSAGE_ACCEPTED / MESSAGE_NOT_ACCTEPTED; returns the notification id."""
        snapshot = self._registry.current()
        caller = self._authenticate(snapshot, notification.credentials)
        message = self._store.find(notification.message_id)
        if message is None or message.recipient_id != caller or message.service_id != notification.service_id:
            raise GatewayError(ErrorCode.UNKNOWN_MESSAGE, f"no message {notification.message_id!r} addressed to {caller}")
        notify = status_notification_point(snapshot, message)
        resend = notification.receive_status == NOT_ACCEPTED and notification.resend
        if notification.receive_status == ACCEPTED:
            state = DELIVERED
        else:
            state = ON_DELIVERY if resend else NOT_DELIVERED
        error = notification.error.message if notification.error else None
        with self._store.begin() as connection:
            self._store.set_receive_status(connection, message.message_id, notification.receive_status, refetch=resend)
            self._store.change_state(connection, message, state, notify, error=error, received_at=now())
            if resend and message.delivery_mode == "PUSH":
                point_id = self._push_point_for(snapshot, message)
                if point_id is not None:
                    self._store.queue_push(connection, message.message_id, point_id)
        return new_message_id()

    @staticmethod
    def _push_point_for(snapshot: RegistrySnapshot, message: StoredMessage) -> int | None:
        if message.message_type == "REQUEST":
            service = snapshot.services.get(message.service_id)
            try:
                return resolve_delivery_point(service, message.route_id, snapshot.delivery_points).id if service else None
            except GatewayError:
                return None  # the route is gone from the registry since: nowhere to resend to
        recipient = snapshot.senders.get(message.recipient_id)
        return recipient.response_delivery_point_id if recipient else None
