"""A SOAP provider implementing ISyncChannel ``SendMessage``, as a service owner's system would.

It answers every request with SCSS001 and a payload that echoes what it received, and can be told to be slow,
to answer with a SOAP fault, to answer an HTTP error, or to sign its business data. It keeps the raw requests
it received, so tests can see exactly what the gateway forwarded.
"""
from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from emulators.data_signer import DataSigner
from emulators.http import reply
from gateway.errors import ErrorInfo, GatewayError
from gateway.security.encryption import open_envelope
from gateway.soap.envelope import build_envelope, fault_envelope, parse_envelope
from gateway.soap.namespaces import XS, XSI
from gateway.soap.sync_messages import (
    SEND_MESSAGE,
    SEND_MESSAGE_FAULT,
    SyncRequest,
    SyncResponse,
    build_send_message_response,
    read_send_message,
)
from gateway.soap.values import format_datetime

EMULATOR_NS = "urn:gateway:emulator:provider"
SUCCESS_CODE = "SCSS001"
SUCCESS_MESSAGE = "Message has been processed successfully"


@dataclass
class ProviderBehaviour:
    """What the emulator does with the next requests; tests change it between calls."""

    delay_seconds: float = 0.0
    fault: ErrorInfo | None = None
    http_status: int | None = None
    sign_data: bool = False


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    body: bytes


@dataclass
class SyncProviderEmulator:
    """The WSGI provider; ``received`` holds every request it got, in order."""

    behaviour: ProviderBehaviour = field(default_factory=ProviderBehaviour)
    signer: DataSigner | None = None
    decryption_keys: tuple[rsa.RSAPrivateKey, ...] = ()  # security mode 3: the provider's own key
    received: list[ReceivedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return reply(start_response, 200, b"sync provider emulator: POST a SendMessage envelope\n", "text/plain")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self._lock:
            self.received.append(ReceivedRequest(environ.get("PATH_INFO", "/"), body))
        behaviour = self.behaviour
        if behaviour.delay_seconds:
            time.sleep(behaviour.delay_seconds)
        if behaviour.http_status is not None:
            return reply(start_response, behaviour.http_status, b"emulated HTTP failure\n", "text/plain")
        try:
            envelope = open_envelope(parse_envelope(body), self.decryption_keys).envelope
            request = read_send_message(envelope.payload) if envelope.payload_qname == SEND_MESSAGE else None
        except GatewayError:
            request = None
        if request is None:
            return reply(start_response, 500, _fault(ErrorInfo("SCE001", "Message format error", datetime.now(UTC))))
        if behaviour.fault is not None:
            return reply(start_response, 500, _fault(behaviour.fault))
        response = SyncResponse(
            message_id=str(uuid.uuid4()),
            correlation_id=request.message_id,
            response_date=format_datetime(datetime.now(UTC)),
            status_code=SUCCESS_CODE,
            status_message=SUCCESS_MESSAGE,
            data=self._answer_data(request, behaviour.sign_data),
        )
        return reply(start_response, 200, build_envelope(build_send_message_response(response, None)))

    def _answer_data(self, request: SyncRequest, sign: bool) -> etree._Element:
        answer = etree.Element(f"{{{EMULATOR_NS}}}answer", nsmap={None: EMULATOR_NS})
        etree.SubElement(answer, f"{{{EMULATOR_NS}}}serviceId").text = request.service_id
        etree.SubElement(answer, f"{{{EMULATOR_NS}}}requestMessageId").text = request.message_id
        echo = etree.SubElement(answer, f"{{{EMULATOR_NS}}}echo")
        as_text = request.data is not None and len(request.data) == 0
        if request.data is not None:
            echo.text = request.data.text if as_text else None
            for child in request.data:
                echo.append(copy.deepcopy(child))
        if sign and self.signer is not None:
            answer = self.signer.sign(answer)
        data = etree.Element("data", nsmap={"xsi": XSI, "xs": XS})
        if as_text:
            data.set(f"{{{XSI}}}type", "xs:string")
            data.text = etree.tostring(answer, encoding="unicode")
        else:
            data.append(answer)
        return data


def _fault(info: ErrorInfo) -> bytes:
    return fault_envelope(SEND_MESSAGE_FAULT, info, "Server", info.message)
