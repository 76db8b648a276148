"""Helpers for tests that speak the wire: posting envelopes, reading answers, validating against the real XSD."""
from __future__ import annotations

import copy
import functools
import uuid
from dataclasses import dataclass
from pathlib import Path

import urllib3
from lxml import etree
from sqlalchemy import Engine, select

from journals.models import LoggingJournalEntry

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SYNC_TYPES = "http://bip.bee.kz/SyncChannel/v10/Types"
HTTP = urllib3.PoolManager(retries=False, timeout=30.0)
REPO_ROOT = Path(__file__).resolve().parents[1]
PEERS = REPO_ROOT.parent / "shared" / "peers" / "shep-wsdl"
SAMPLES = PEERS / "samples"


@dataclass
class Answer:
    status: int
    body: bytes

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body)

    @property
    def payload(self) -> etree._Element:
        return self.root.find(f"{{{SOAP_ENV}}}Body")[0]

    def fault_info(self) -> etree._Element:
        """The ErrorInfo element in the Fault's detail; fails the test when the answer is not a SOAP Fault."""
        fault = self.payload
        assert fault.tag == f"{{{SOAP_ENV}}}Fault", self.body[:500]
        detail = fault.find("detail")
        assert detail is not None and len(detail) == 1, self.body[:500]
        return detail[0]

    def error_code(self) -> str:
        return self.fault_info().findtext("errorCode")

    def session_id(self) -> str:
        if self.status == 200:
            return self.payload.findtext("response/responseInfo/sessionId")
        return self.fault_info().findtext("sessionId")


def post(url: str, body: bytes | str, content_type: str | None = "text/xml; charset=utf-8", soap_action: str | None = '""') -> Answer:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if soap_action is not None:
        headers["SOAPAction"] = soap_action
    data = body.encode("utf-8") if isinstance(body, str) else body
    response = HTTP.request("POST", url, body=data, headers=headers)
    return Answer(response.status, response.data)


@functools.cache
def hub_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PEERS / "flattened" / "hub.xsd")))


XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def assert_wire_valid(payload: etree._Element) -> None:
    """The Body's first child validates against the real ShEP schema set (flattened hub).

    ``data`` is xs:anyType and its content is the sender's business data, passed through untouched; an
    ``xsi:type`` on it naming a type of the sender's own (the NCANode samples' ``cs:Request``) cannot resolve
    in the ShEP set, so such an attribute is left out of the copy that is validated.
    """
    schema = hub_schema()
    copied = copy.deepcopy(payload)
    for data in copied.iter("data"):
        prefix = (data.get(XSI_TYPE) or "").partition(":")[0]
        if data.get(XSI_TYPE) and data.nsmap.get(prefix) != "http://www.w3.org/2001/XMLSchema":
            del data.attrib[XSI_TYPE]
    document = etree.ElementTree(copied)
    assert schema.validate(document), f"{schema.error_log}\n{etree.tostring(payload)[:800]!r}"


def body_child(envelope: bytes) -> etree._Element:
    return etree.fromstring(envelope).find(f"{{{SOAP_ENV}}}Body")[0]


def sync_request(
    service_id: str = "GbdflPersonInfo",
    sender_id: str = "pep",
    password: str | None = "pep-test-password",
    message_id: str | None = None,
    route_id: str | None = None,
    data: str = '<data xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">hello</data>',
    message_date: str = "2026-11-22T12:00:00.000+05:00",
    properties: str = "",
) -> str:
    """A well-formed sync SendMessage envelope, in schema order."""
    message_id = message_id or str(uuid.uuid4())
    route = f"<routeId>{route_id}</routeId>" if route_id else ""
    pwd = f"<password>{password}</password>" if password is not None else ""
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
        f'<ns2:SendMessage xmlns:ns2="{SYNC_TYPES}"><request><requestInfo>'
        f"<messageId>{message_id}</messageId><serviceId>{service_id}</serviceId>"
        f"<messageDate>{message_date}</messageDate>{route}"
        f"<sender><senderId>{sender_id}</senderId>{pwd}</sender>{properties}"
        f"</requestInfo><requestData>{data}</requestData></request></ns2:SendMessage>"
        f"</soapenv:Body></soapenv:Envelope>"
    )


def journal_rows(engine: Engine, session_id: str) -> list[LoggingJournalEntry]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        query = select(LoggingJournalEntry).where(LoggingJournalEntry.session_id == session_id).order_by(LoggingJournalEntry.id)
        return list(session.scalars(query))


ASYNC_TYPES = "http://bip.bee.kz/AsyncChannel/v10/Types"


def async_envelope(operation: str, request: str) -> str:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
        f'<ns2:{operation} xmlns:ns2="{ASYNC_TYPES}"><request>{request}</request></ns2:{operation}>'
        f"</soapenv:Body></soapenv:Envelope>"
    )


def sender(sender_id: str, password: str | None) -> str:
    pwd = f"<password>{password}</password>" if password is not None else ""
    return f"<sender><senderId>{sender_id}</senderId>{pwd}</sender>"


def async_send(
    service_id: str,
    sender_id: str = "pep",
    password: str | None = "pep-test-password",
    message_type: str = "REQUEST",
    correlation_id: str | None = None,
    data: str = "<data><query xmlns='urn:test'><iin>931002451325</iin></query></data>",
    route_id: str | None = None,
) -> str:
    correlation = f"<correlationId>{correlation_id}</correlationId>" if correlation_id else ""
    route = f"<routeId>{route_id}</routeId>" if route_id else ""
    return async_envelope(
        "sendMessage",
        f"<messageInfo>{correlation}<serviceId>{service_id}</serviceId><messageType>{message_type}</messageType>{route}"
        f"<messageDate>2026-11-22T12:00:00+05:00</messageDate>{sender(sender_id, password)}"
        f"<properties><key>k</key><value>v</value></properties></messageInfo><messageData>{data}</messageData>",
    )


def get_messages(service_id: str, sender_id: str, password: str, message_id: str | None = None,
                 correlation_id: str | None = None, amount: int | None = None) -> str:
    parts = f"<messageId>{message_id}</messageId>" if message_id else ""
    parts += f"<correlationId>{correlation_id}</correlationId>" if correlation_id else ""
    parts += f"<serviceId>{service_id}</serviceId>{sender(sender_id, password)}"
    parts += f"<amount>{amount}</amount>" if amount is not None else ""
    return async_envelope("getMessages", parts)


def get_status(message_id: str, sender_id: str, password: str) -> str:
    return async_envelope(
        "getMessageStatus",
        f"<messageId>{message_id}</messageId><requestDate>2026-11-22T12:00:00Z</requestDate>{sender(sender_id, password)}",
    )


def delivery_notification(message_id: str, service_id: str, status: str, resend: str, sender_id: str, password: str) -> str:
    return async_envelope(
        "sendDeliveryNotification",
        f"<notification><messageId>{message_id}</messageId><serviceId>{service_id}</serviceId>"
        f"<notificationDate>2026-11-22T12:00:00Z</notificationDate><deliveryStatus><receiveStatus>{status}</receiveStatus>"
        f"<statusDate>2026-11-22T12:00:00Z</statusDate><resendMessage>{resend}</resendMessage></deliveryStatus>"
        f"</notification><requestDate>2026-11-22T12:00:00Z</requestDate>{sender(sender_id, password)}",
    )


def wait_for(condition, seconds: float = 15.0, interval: float = 0.05):  # noqa: ANN001, ANN201
    """Poll ``condition`` until it returns something truthy (bounded); fail the test when time runs out."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {seconds} s")
