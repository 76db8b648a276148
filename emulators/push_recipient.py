"""An information system's IAsyncChannelClient: receives PUSHed ``sendMessage`` and
``changeMassageStatusNotification`` calls, and can be told to fail, be slow, or be down."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from emulators.http import reply
from gateway.errors import ErrorInfo, GatewayError
from gateway.soap import async_messages as wire
from gateway.soap.envelope import build_envelope, fault_envelope, parse_envelope
from gateway.soap.fields import add, children, text
from gateway.soap.namespaces import ASYNC_CLIENT_TYPES
from gateway.soap.values import format_datetime, new_session_id


@dataclass(frozen=True)
class Received:
    """One call the recipient got: which operation, when, the message id and the whole body."""

    operation: str
    at: float
    message_id: str | None
    state: str | None
    body: bytes


@dataclass
class RecipientBehaviour:
    """``fail_next`` calls answer with a SOAP fault; ``delay_seconds`` before answering; ``down`` answers 503;
    ``garbage`` answers 200 with a body that is not XML."""

    fail_next: int = 0
    delay_seconds: float = 0.0
    down: bool = False
    garbage: bool = False


@dataclass
class PushRecipientEmulator:
    behaviour: RecipientBehaviour = field(default_factory=RecipientBehaviour)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[Received]:
        return [r for r in self.received if r.operation == "sendMessage"]

    def notifications(self) -> list[Received]:
        return [r for r in self.received if r.operation == "changeMassageStatusNotification"]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return reply(start_response, 200, b"push recipient emulator\n", "text/plain")
        arrived = time.time()
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self._lock:
            self.attempts += 1
            behaviour = self.behaviour
            failing = behaviour.fail_next > 0
            if failing:
                behaviour.fail_next -= 1
        if behaviour.delay_seconds:
            time.sleep(behaviour.delay_seconds)
        if behaviour.down:
            return reply(start_response, 503, b"down\n", "text/plain")
        if behaviour.garbage:
            return reply(start_response, 200, b"<html><body>Welcome to nginx!</body>", "text/html")
        try:
            payload = parse_envelope(body).payload
        except GatewayError:
            return reply(start_response, 500, _fault(wire.SEND_MESSAGE, "SCE001", "Message format error"))
        operation = etree.QName(payload).localname
        if failing:
            return reply(start_response, 500, _fault(payload.tag, "RCP500", "Emulated recipient failure"))
        if payload.tag == wire.SEND_MESSAGE:
            info = children(payload.find("request/messageInfo"))
            message_id, correlation_id = text(info, "messageId"), text(info, "correlationId")
            answer = wire.build_send_message_response(message_id or "", correlation_id or "", format_datetime(datetime.now(UTC)), new_session_id())
            state = None
        elif payload.tag == wire.CHANGE_STATUS_NOTIFICATION:
            notification = children(payload.find("request/notification"))
            message_id, state = text(notification, "messageId"), text(notification, "messageState")
            answer = etree.Element(wire.CHANGE_STATUS_NOTIFICATION_RESPONSE, nsmap={"ns3": ASYNC_CLIENT_TYPES})
            response = etree.SubElement(answer, "response")
            add(response, "responseDate", format_datetime(datetime.now(UTC)))
            add(response, "sessionId", payload.findtext("request/sessionId") or new_session_id())
        else:
            return reply(start_response, 500, _fault(wire.SEND_MESSAGE, "SCE018", "Unsupported operation"))
        with self._lock:
            self.received.append(Received(operation, arrived, message_id, state, body))
        return reply(start_response, 200, build_envelope(answer))


def _fault(operation_tag: str, code: str, message: str) -> bytes:
    if operation_tag == wire.CHANGE_STATUS_NOTIFICATION:
        element = f"{{{ASYNC_CLIENT_TYPES}}}changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault"
    else:
        element = wire.FAULT_OF[wire.SEND_MESSAGE]
    return fault_envelope(element, ErrorInfo(code, message, datetime.now(UTC)), "Server", message)
