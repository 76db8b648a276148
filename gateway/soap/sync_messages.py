"""ISyncChannel messages: lenient reading (shep-wire.md §2.8) and strict writing in schema order.

Reading matches children by local name, in any order, ignores empty optional elements and accepts ``data`` in
any namespace. Writing follows the XSD sequence exactly, with unqualified local elements. ``data`` is never
re-interpreted: its attributes, namespace context, text and children are carried over as they came.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import ErrorCode, GatewayError
from gateway.soap.namespaces import SYNC_TYPES, XSI
from gateway.soap.values import is_xs_datetime

SEND_MESSAGE = f"{{{SYNC_TYPES}}}SendMessage"
SEND_MESSAGE_RESPONSE = f"{{{SYNC_TYPES}}}SendMessageResponse"
SEND_MESSAGE_FAULT = f"{{{SYNC_TYPES}}}SendMessageFault1_SendMessageFault"

PROPERTY_KEY_MAX = 30
PROPERTY_VALUE_MAX = 500
STATUS_MESSAGE_MAX = 250
_NIL = f"{{{XSI}}}nil"


@dataclass(frozen=True)
class Property:
    key: str
    value: str


@dataclass
class SyncRequest:
    """``SendMessage/request``: what the caller asked for, with its business data kept as an element."""

    message_id: str
    service_id: str
    message_date: str
    sender_id: str
    password: str | None = None
    correlation_id: str | None = None
    route_id: str | None = None
    properties: list[Property] = field(default_factory=list)
    data: etree._Element | None = None


@dataclass
class SyncResponse:
    """``SendMessageResponse/response``: the provider's answer."""

    message_id: str
    response_date: str
    status_code: str
    status_message: str
    correlation_id: str | None = None
    data: etree._Element | None = None


def _children(element: etree._Element) -> dict[str, list[etree._Element]]:
    found: dict[str, list[etree._Element]] = {}
    for child in element.iterchildren(tag=etree.Element):
        found.setdefault(etree.QName(child).localname, []).append(child)
    return found


def _text(children: dict[str, list[etree._Element]], name: str) -> str | None:
    """The stripped text of the first child called ``name``; None when absent or empty (a tolerated deviation)."""
    elements = children.get(name)
    if not elements:
        return None
    text = (elements[0].text or "").strip()
    return text or None


def _required(children: dict[str, list[etree._Element]], name: str, where: str) -> str:
    value = _text(children, name)
    if value is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is missing or empty")
    return value


def _single(parent: etree._Element, name: str, where: str) -> etree._Element:
    element = _children(parent).get(name)
    if not element:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is missing")
    if element[0].get(_NIL) in ("true", "1"):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is nil")
    return element[0]


def _date(children: dict[str, list[etree._Element]], name: str, where: str) -> str:
    value = _required(children, name, where)
    if not is_xs_datetime(value):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is not a dateTime: {value[:60]!r}")
    return value


def _properties(children: dict[str, list[etree._Element]], where: str) -> list[Property]:
    properties = []
    for element in children.get("properties", []):
        pair = _children(element)
        key, value = _text(pair, "key"), _text(pair, "value")
        if key is None and value is None:
            continue  # <properties></properties>: an empty entry some clients send
        if key is None:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/properties has a value without a key")
        if len(key) > PROPERTY_KEY_MAX or len(value or "") > PROPERTY_VALUE_MAX:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/properties {key[:40]!r} is too long")
        properties.append(Property(key, value or ""))
    return properties


def _data(parent: etree._Element) -> etree._Element | None:
    elements = _children(parent).get("data")
    return elements[0] if elements else None


def read_send_message(payload: etree._Element) -> SyncRequest:
    """Read ``SendMessage`` leniently; raise MALFORMED_MESSAGE naming the first missing piece."""
    request = _single(payload, "request", "SendMessage")
    info = _single(request, "requestInfo", "request")
    fields = _children(info)
    sender_elements = fields.get("sender")
    if not sender_elements:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "requestInfo/sender is missing")
    sender = _children(sender_elements[0])
    request_data = _children(request).get("requestData")
    return SyncRequest(
        message_id=_required(fields, "messageId", "requestInfo"),
        correlation_id=_text(fields, "correlationId"),
        service_id=_required(fields, "serviceId", "requestInfo"),
        message_date=_date(fields, "messageDate", "requestInfo"),
        route_id=_text(fields, "routeId"),
        sender_id=_required(sender, "senderId", "requestInfo/sender"),
        password=_text(sender, "password"),
        properties=_properties(fields, "requestInfo"),
        data=_data(request_data[0]) if request_data else None,
    )


def read_send_message_response(payload: etree._Element) -> SyncResponse:
    """Read a provider's ``SendMessageResponse`` leniently."""
    if payload.tag != SEND_MESSAGE_RESPONSE and etree.QName(payload).localname != "SendMessageResponse":
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"unexpected answer element {payload.tag}")
    try:
        response = _single(payload, "response", "SendMessageResponse")
        info = _single(response, "responseInfo", "response")
        fields = _children(info)
        status = _single(info, "status", "responseInfo")
        status_fields = _children(status)
        response_data = _children(response).get("responseData")
        return SyncResponse(
            message_id=_required(fields, "messageId", "responseInfo"),
            correlation_id=_text(fields, "correlationId"),
            response_date=_date(fields, "responseDate", "responseInfo"),
            status_code=_required(status_fields, "code", "responseInfo/status"),
            status_message=_text(status_fields, "message") or "",
            data=_data(response_data[0]) if response_data else None,
        )
    except GatewayError as exc:
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, exc.data) from exc


def _copy_data(parent: etree._Element, data: etree._Element | None) -> None:
    """Append an unqualified ``data`` carrying the original's attributes, namespace context and content."""
    if data is None:
        return
    # The in-scope prefixes go along: xsi:type values and QName content inside may refer to them.
    nsmap = {prefix: uri for prefix, uri in data.nsmap.items() if prefix is not None}
    target = etree.SubElement(parent, "data", nsmap=nsmap)
    for name, value in data.attrib.items():
        target.set(name, value)
    target.text = data.text
    for child in data:
        target.append(copy.deepcopy(child))
    if len(target):
        target[-1].tail = data[-1].tail


def _properties_into(parent: etree._Element, properties: list[Property]) -> None:
    for prop in properties:
        element = etree.SubElement(parent, "properties")
        etree.SubElement(element, "key").text = prop.key
        etree.SubElement(element, "value").text = prop.value


def _sub(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, name).text = text


def build_send_message(request: SyncRequest, session_id: str) -> etree._Element:
    """The ``SendMessage`` the gateway sends to a provider: schema order, password stripped, its session id."""
    root = etree.Element(SEND_MESSAGE, nsmap={"ns2": SYNC_TYPES})
    body = etree.SubElement(root, "request")
    info = etree.SubElement(body, "requestInfo")
    _sub(info, "messageId", request.message_id)
    if request.correlation_id is not None:
        _sub(info, "correlationId", request.correlation_id)
    _sub(info, "serviceId", request.service_id)
    _sub(info, "messageDate", request.message_date)
    if request.route_id is not None:
        _sub(info, "routeId", request.route_id)
    sender = etree.SubElement(info, "sender")
    _sub(sender, "senderId", request.sender_id)
    _properties_into(info, request.properties)
    _sub(info, "sessionId", session_id)
    _copy_data(etree.SubElement(body, "requestData"), request.data)
    return root


def build_send_message_response(response: SyncResponse, session_id: str | None) -> etree._Element:
    """A ``SendMessageResponse``; the gateway passes its session id, a provider passes None."""
    root = etree.Element(SEND_MESSAGE_RESPONSE, nsmap={"ns2": SYNC_TYPES})
    body = etree.SubElement(root, "response")
    info = etree.SubElement(body, "responseInfo")
    _sub(info, "messageId", response.message_id)
    if response.correlation_id is not None:
        _sub(info, "correlationId", response.correlation_id)
    _sub(info, "responseDate", response.response_date)
    status = etree.SubElement(info, "status")
    _sub(status, "code", response.status_code)
    _sub(status, "message", response.status_message[:STATUS_MESSAGE_MAX])
    if session_id is not None:
        _sub(info, "sessionId", session_id)
    _copy_data(etree.SubElement(body, "responseData"), response.data)
    return root
