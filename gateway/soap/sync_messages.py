"""ISyncChannel messages: lenient reading (shep-wire.md §2.8) and strict writing in schema order.

Reading matches children by local name, in any order, ignores empty optional elements and accepts ``data`` in
any namespace. Writing follows the XSD sequence exactly, with unqualified local elements. ``data`` is never
re-interpreted: its attributes, namespace context, text and children are carried over as they came.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import ErrorCode, GatewayError
from gateway.soap.fields import (
    Property,
    add,
    children,
    copy_data,
    date,
    find_data,
    read_properties,
    required,
    single,
    text,
    write_properties,
)
from gateway.soap.limits import check_lengths
from gateway.soap.namespaces import SYNC_TYPES

SEND_MESSAGE = f"{{{SYNC_TYPES}}}SendMessage"
SEND_MESSAGE_RESPONSE = f"{{{SYNC_TYPES}}}SendMessageResponse"
SEND_MESSAGE_FAULT = f"{{{SYNC_TYPES}}}SendMessageFault1_SendMessageFault"

STATUS_MESSAGE_MAX = 250


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


def read_send_message(payload: etree._Element) -> SyncRequest:
    """Read ``SendMessage`` leniently; raise MALFORMED_MESSAGE naming the first missing piece."""
    request = single(payload, "request", "SendMessage")
    info = single(request, "requestInfo", "request")
    fields = children(info)
    sender_elements = fields.get("sender")
    if not sender_elements:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "requestInfo/sender is missing")
    sender = children(sender_elements[0])
    request_data = children(request).get("requestData")
    read = SyncRequest(
        message_id=required(fields, "messageId", "requestInfo"),
        correlation_id=text(fields, "correlationId"),
        service_id=required(fields, "serviceId", "requestInfo"),
        message_date=date(fields, "messageDate", "requestInfo"),
        route_id=text(fields, "routeId"),
        sender_id=required(sender, "senderId", "requestInfo/sender"),
        password=text(sender, "password"),
        properties=read_properties(fields, "requestInfo"),
        data=find_data(request_data[0]) if request_data else None,
    )
    check_lengths("SendMessage", {
        "requestInfo/messageId": read.message_id,
        "requestInfo/correlationId": read.correlation_id,
        "requestInfo/serviceId": read.service_id,
        "requestInfo/routeId": read.route_id,
        "requestInfo/sender/senderId": read.sender_id,
    })
    return read


def read_send_message_response(payload: etree._Element) -> SyncResponse:
    """Read a provider's ``SendMessageResponse`` leniently."""
    if payload.tag != SEND_MESSAGE_RESPONSE and etree.QName(payload).localname != "SendMessageResponse":
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"unexpected answer element {payload.tag}")
    try:
        response = single(payload, "response", "SendMessageResponse")
        info = single(response, "responseInfo", "response")
        fields = children(info)
        status = single(info, "status", "responseInfo")
        status_fields = children(status)
        response_data = children(response).get("responseData")
        read = SyncResponse(
            message_id=required(fields, "messageId", "responseInfo"),
            correlation_id=text(fields, "correlationId"),
            response_date=date(fields, "responseDate", "responseInfo"),
            status_code=required(status_fields, "code", "responseInfo/status"),
            status_message=text(status_fields, "message") or "",
            data=find_data(response_data[0]) if response_data else None,
        )
        check_lengths("SendMessageResponse", {"responseInfo/messageId": read.message_id})
        return read
    except GatewayError as exc:
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, exc.data) from exc


def build_send_message(request: SyncRequest, session_id: str) -> etree._Element:
    """The ``SendMessage`` the gateway sends to a provider: schema order, password stripped, its session id."""
    root = etree.Element(SEND_MESSAGE, nsmap={"ns2": SYNC_TYPES})
    body = etree.SubElement(root, "request")
    info = etree.SubElement(body, "requestInfo")
    add(info, "messageId", request.message_id)
    if request.correlation_id is not None:
        add(info, "correlationId", request.correlation_id)
    add(info, "serviceId", request.service_id)
    add(info, "messageDate", request.message_date)
    if request.route_id is not None:
        add(info, "routeId", request.route_id)
    sender = etree.SubElement(info, "sender")
    add(sender, "senderId", request.sender_id)
    write_properties(info, request.properties)
    add(info, "sessionId", session_id)
    copy_data(etree.SubElement(body, "requestData"), request.data)
    return root


def build_send_message_response(response: SyncResponse, session_id: str | None) -> etree._Element:
    """A ``SendMessageResponse``; the gateway passes its session id, a provider passes None."""
    root = etree.Element(SEND_MESSAGE_RESPONSE, nsmap={"ns2": SYNC_TYPES})
    body = etree.SubElement(root, "response")
    info = etree.SubElement(body, "responseInfo")
    add(info, "messageId", response.message_id)
    if response.correlation_id is not None:
        add(info, "correlationId", response.correlation_id)
    add(info, "responseDate", response.response_date)
    status = etree.SubElement(info, "status")
    add(status, "code", response.status_code)
    add(status, "message", response.status_message[:STATUS_MESSAGE_MAX])
    if session_id is not None:
        add(info, "sessionId", session_id)
    copy_data(etree.SubElement(body, "responseData"), response.data)
    return root
