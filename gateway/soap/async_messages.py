"""IAsyncChannel and IAsyncChannelClient messages: lenient reading, strict writing in schema order."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from gateway.errors import ErrorCode, ErrorInfo, GatewayError
from gateway.soap.envelope import error_info_element, parse_xml, read_error_info
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
from gateway.soap.namespaces import ASYNC_CLIENT_TYPES, ASYNC_TYPES

SEND_MESSAGE = f"{{{ASYNC_TYPES}}}sendMessage"
SEND_MESSAGE_RESPONSE = f"{{{ASYNC_TYPES}}}sendMessageResponse"
GET_MESSAGE_STATUS = f"{{{ASYNC_TYPES}}}getMessageStatus"
GET_MESSAGES = f"{{{ASYNC_TYPES}}}getMessages"
SEND_DELIVERY_NOTIFICATION = f"{{{ASYNC_TYPES}}}sendDeliveryNotification"
CHANGE_STATUS_NOTIFICATION = f"{{{ASYNC_CLIENT_TYPES}}}changeMassageStatusNotification"
CHANGE_STATUS_NOTIFICATION_RESPONSE = f"{{{ASYNC_CLIENT_TYPES}}}changeMassageStatusNotificationResponse"

# The fault element of each operation (the detail child of its SOAP Fault).
FAULT_OF = {
    SEND_MESSAGE: f"{{{ASYNC_TYPES}}}sendMessageFault1_sendMessageFault",
    GET_MESSAGE_STATUS: f"{{{ASYNC_TYPES}}}getMessageStatusFault1_getMessageStatusFault",
    GET_MESSAGES: f"{{{ASYNC_TYPES}}}getMessagesFault1_getMessagesFault",
    SEND_DELIVERY_NOTIFICATION: f"{{{ASYNC_TYPES}}}sendDeliveryNotificationFault1_sendDeliveryNotificationFault",
}
MESSAGE_TYPES = ("REQUEST", "NOTIFICATION", "UPDATE", "RESPONSE")
ACCEPTED = "MESSAGE_ACCEPTED"
NOT_ACCEPTED = "MESSAGE_NOT_ACCTEPTED"  # the schema's spelling
RESEND_VALUES = ("RESEND", "NOT_RESEND")
_NSMAP = {"ns2": ASYNC_TYPES}


@dataclass
class MessageInfo:
    """``AsyncMessageInfo``: a message's metadata, as sent to the gateway or delivered by it."""

    service_id: str
    message_type: str
    message_date: str
    sender_id: str
    password: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    route_id: str | None = None
    properties: list[Property] = field(default_factory=list)


@dataclass
class Credentials:
    sender_id: str | None
    password: str | None


@dataclass
class StatusQuery:
    message_id: str
    credentials: Credentials


@dataclass
class MessagesQuery:
    service_id: str
    credentials: Credentials
    message_id: str | None = None
    correlation_id: str | None = None
    amount: int | None = None


@dataclass
class DeliveryNotification:
    message_id: str
    service_id: str
    receive_status: str
    resend: bool
    credentials: Credentials
    error: ErrorInfo | None = None


def _credentials(sender: list[etree._Element] | None) -> Credentials:
    if not sender:
        return Credentials(None, None)
    fields = children(sender[0])
    return Credentials(text(fields, "senderId"), text(fields, "password"))


def read_message_info(info: etree._Element, where: str = "messageInfo") -> MessageInfo:
    """Read ``AsyncMessageInfo`` leniently; an unknown ``messageType`` is malformed."""
    fields = children(info)
    credentials = _credentials(fields.get("sender"))
    if credentials.sender_id is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/sender/senderId is missing or empty")
    message_type = required(fields, "messageType", where)
    if message_type not in MESSAGE_TYPES:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/messageType {message_type[:30]!r} is not one of {', '.join(MESSAGE_TYPES)}")
    read = MessageInfo(
        message_id=text(fields, "messageId"),
        correlation_id=text(fields, "correlationId"),
        service_id=required(fields, "serviceId", where),
        message_type=message_type,
        route_id=text(fields, "routeId"),
        message_date=date(fields, "messageDate", where),
        sender_id=credentials.sender_id,
        password=credentials.password,
        properties=read_properties(fields, where),
    )
    # The caller's messageId is not kept: the gateway gives every accepted message its own.
    check_lengths("sendMessage", {
        "messageInfo/correlationId": read.correlation_id,
        "messageInfo/serviceId": read.service_id,
        "messageInfo/messageType": read.message_type,
        "messageInfo/routeId": read.route_id,
        "messageInfo/messageDate": read.message_date,
        "messageInfo/sender/senderId": read.sender_id,
    })
    return read


def read_send_message(payload: etree._Element) -> tuple[MessageInfo, etree._Element]:
    """``sendMessage``: its message info and its (required) ``data`` element."""
    request = single(payload, "request", "sendMessage")
    info = read_message_info(single(request, "messageInfo", "request"))
    message_data = children(request).get("messageData")
    data = find_data(message_data[0]) if message_data else None
    if data is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "request/messageData/data is missing")
    return info, data


def build_send_message_response(message_id: str, correlation_id: str, response_date: str, session_id: str) -> etree._Element:
    root = etree.Element(SEND_MESSAGE_RESPONSE, nsmap=_NSMAP)
    response = etree.SubElement(root, "response")
    add(response, "messageId", message_id)
    add(response, "correlationId", correlation_id)
    add(response, "responseDate", response_date)
    add(response, "sessionId", session_id)
    return root


def read_get_message_status(payload: etree._Element) -> StatusQuery:
    request = single(payload, "request", "getMessageStatus")
    fields = children(request)
    query = StatusQuery(required(fields, "messageId", "request"), _credentials(fields.get("sender")))
    check_lengths("getMessageStatus", {
        "request/messageId": query.message_id, "request/sender/senderId": query.credentials.sender_id,
    })
    return query


def build_get_message_status_response(
    state: str, status_code: str, status_message: str, status_date: str, response_date: str, session_id: str
) -> etree._Element:
    root = etree.Element(f"{{{ASYNC_TYPES}}}getMessageStatusResponse", nsmap=_NSMAP)
    response = etree.SubElement(root, "response")
    add(response, "messageState", state)
    status = etree.SubElement(response, "status")
    add(status, "statusCode", status_code)
    add(status, "statusMessage", status_message)
    add(status, "statusDate", status_date)
    add(response, "responseDate", response_date)
    add(response, "sessionId", session_id)
    return root


def read_get_messages(payload: etree._Element) -> MessagesQuery:
    request = single(payload, "request", "getMessages")
    fields = children(request)
    amount_text = text(fields, "amount")
    try:
        amount = int(amount_text) if amount_text is not None else None
    except ValueError as exc:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"request/amount {amount_text[:20]!r} is not an integer") from exc
    if amount is not None and amount < 0:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "request/amount is negative")
    query = MessagesQuery(
        message_id=text(fields, "messageId"),
        correlation_id=text(fields, "correlationId"),
        service_id=required(fields, "serviceId", "request"),
        credentials=_credentials(fields.get("sender")),
        amount=amount,
    )
    check_lengths("getMessages", {
        "request/messageId": query.message_id,
        "request/correlationId": query.correlation_id,
        "request/serviceId": query.service_id,
        "request/sender/senderId": query.credentials.sender_id,
    })
    return query


def message_info_element(parent: etree._Element, info: MessageInfo, session_id: str | None) -> None:
    """Append ``messageInfo`` in schema order; the sender's password is never passed on."""
    element = etree.SubElement(parent, "messageInfo")
    if info.message_id is not None:
        add(element, "messageId", info.message_id)
    if info.correlation_id is not None:
        add(element, "correlationId", info.correlation_id)
    add(element, "serviceId", info.service_id)
    add(element, "messageType", info.message_type)
    if info.route_id is not None:
        add(element, "routeId", info.route_id)
    add(element, "messageDate", info.message_date)
    add(etree.SubElement(element, "sender"), "senderId", info.sender_id)
    write_properties(element, info.properties)
    if session_id is not None:
        add(element, "sessionId", session_id)


def build_get_messages_response(
    response_date: str, session_id: str, messages: list[tuple[MessageInfo, etree._Element]]
) -> etree._Element:
    root = etree.Element(f"{{{ASYNC_TYPES}}}getMessagesResponse", nsmap=_NSMAP)
    response = etree.SubElement(root, "response")
    add(response, "responseDate", response_date)
    add(response, "sessionId", session_id)
    for info, data in messages:
        message = etree.SubElement(response, "messages")
        message_info_element(message, info, None)
        copy_data(etree.SubElement(message, "messageData"), data)
    return root


def read_send_delivery_notification(payload: etree._Element) -> DeliveryNotification:
    request = single(payload, "request", "sendDeliveryNotification")
    notification = single(request, "notification", "request")
    fields = children(notification)
    status = single(notification, "deliveryStatus", "request/notification")
    status_fields = children(status)
    receive_status = required(status_fields, "receiveStatus", "deliveryStatus")
    if receive_status == "MESSAGE_NOT_ACCEPTED":
        receive_status = NOT_ACCEPTED  # the correct spelling is accepted too (gateway-rules.md §4.6 row 16)
    if receive_status not in (ACCEPTED, NOT_ACCEPTED):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"deliveryStatus/receiveStatus {receive_status[:40]!r} is unknown")
    resend = required(status_fields, "resendMessage", "deliveryStatus")
    if resend not in RESEND_VALUES:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"deliveryStatus/resendMessage {resend[:40]!r} is unknown")
    # Q13: the error block is accepted under deliveryStatus (the schema's place) or under notification.
    error_element = (status_fields.get("error") or fields.get("error") or [None])[0]
    notification_read = DeliveryNotification(
        message_id=required(fields, "messageId", "notification"),
        service_id=required(fields, "serviceId", "notification"),
        receive_status=receive_status,
        resend=resend == "RESEND",
        credentials=_credentials(children(request).get("sender")),
        error=read_error_info(error_element) if error_element is not None else None,
    )
    check_lengths("sendDeliveryNotification", {
        "notification/messageId": notification_read.message_id,
        "notification/serviceId": notification_read.service_id,
        "request/sender/senderId": notification_read.credentials.sender_id,
    })
    return notification_read


def build_send_delivery_notification_response(notification_id: str, response_date: str, session_id: str) -> etree._Element:
    root = etree.Element(f"{{{ASYNC_TYPES}}}sendDeliveryNotificationResponse", nsmap=_NSMAP)
    response = etree.SubElement(root, "response")
    add(response, "notificationId", notification_id)
    add(response, "responseDate", response_date)
    add(response, "sessionId", session_id)
    return root


def build_push_send_message(info: MessageInfo, data: etree._Element, session_id: str) -> etree._Element:
    """The ``sendMessage`` the gateway PUSHes to a recipient's IAsyncChannelClient (same element as inbound)."""
    root = etree.Element(SEND_MESSAGE, nsmap=_NSMAP)
    request = etree.SubElement(root, "request")
    message_info_element(request, info, session_id)
    copy_data(etree.SubElement(request, "messageData"), data)
    return root


def build_change_status_notification(
    notification_id: str,
    message_id: str,
    notification_date: str,
    state: str,
    status_code: str,
    status_message: str,
    error: ErrorInfo | None,
    session_id: str,
) -> etree._Element:
    """``changeMassageStatusNotification`` (the schema's spelling) to a sender that asked for status changes."""
    root = etree.Element(CHANGE_STATUS_NOTIFICATION, nsmap={"ns3": ASYNC_CLIENT_TYPES})
    request = etree.SubElement(root, "request")
    notification = etree.SubElement(request, "notification")
    add(notification, "notificationId", notification_id)
    add(notification, "messageId", message_id)
    add(notification, "notificationDate", notification_date)
    add(notification, "messageState", state)
    status = etree.SubElement(notification, "status")
    add(status, "statusCode", status_code)
    add(status, "statusMessage", status_message)
    add(status, "statusDate", notification_date)
    if error is not None:
        notification.append(error_info_element("error", error))
    add(request, "requestDate", notification_date)
    add(request, "sessionId", session_id)
    return root


class StoredMessageView(Protocol):
    """What the codec reads of a message the gateway stored (``gateway.store.messages.StoredMessage``)."""

    # Read-only properties, so that a frozen dataclass matches.
    @property
    def message_id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...

    @property
    def service_id(self) -> str: ...

    @property
    def message_type(self) -> str: ...

    @property
    def route_id(self) -> str | None: ...

    @property
    def message_date(self) -> str: ...

    @property
    def sender_id(self) -> str: ...

    @property
    def properties(self) -> list[list[str]]: ...

    @property
    def data(self) -> str: ...


# The statusMessage text of each delivery state, in getMessageStatus answers and status notifications.
STATUS_TEXT = {
    "ON_DELIVERY": "The message is being delivered",
    "DELIVERED": "The message has been delivered",
    "NOT_DELIVERED": "The message could not be delivered",
    "DELIVERY_STOPPED": "Delivery is stopped: the recipient's delivery point is switched off",
}


def message_info_of(message: StoredMessageView) -> MessageInfo:
    """The wire view of a stored message (its sender's password was never stored)."""
    return MessageInfo(
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        service_id=message.service_id,
        message_type=message.message_type,
        route_id=message.route_id,
        message_date=message.message_date,
        sender_id=message.sender_id,
        properties=[Property(key, value) for key, value in message.properties],
    )


def stored_data(message: StoredMessageView) -> etree._Element:
    """A stored message's data, parsed again (it was checked when accepted)."""
    return parse_xml(message.data.encode("utf-8"))
