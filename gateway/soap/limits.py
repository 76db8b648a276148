"""What the front door accepts: how long each kept field may be, and how large a parsed document may grow.

A field longer than the column it is written to (or looked up in) would make its database statement fail; for
the logging journal's group commit that is a whole batch of other callers' rows. Such a value is refused at the
front door with SCE001 naming the field, before any work. Each field's limit is the shortest of its columns'
lengths (``COLUMN_LENGTHS``), held to the migrated schema by a test so that it cannot drift.

The document limits keep the cost of a request proportional to its size: every step after parsing is linear
in elements, attributes and namespace declarations, and these caps bound them well below what the memory of a
worker holds (a libxml2 node costs ~120 bytes, an attribute ~200).
"""
from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from gateway.errors import ErrorCode, GatewayError

# Contract limits of Property (shep-wire.md §2.1) that no column enforces: properties are stored as JSON.
PROPERTY_KEY_MAX = 30
PROPERTY_VALUE_MAX = 500

# A 10 MB request of ordinary markup holds ~300k elements; beyond a million a tree costs hundreds of MB.
MAX_ELEMENTS = 1_000_000
MAX_ATTRIBUTES = 1_000_000
# No message of the contract needs more than a handful; business data's attributes pass through, generously.
MAX_ATTRIBUTES_PER_ELEMENT = 1_000
# Copying ``data`` re-declares the namespaces in scope one by one, as libxml2 does, costing their count squared.
MAX_NAMESPACE_DECLARATIONS = 2_000
# libxml2's own nesting limit without huge_tree, named here so that the fault can say it.
MAX_DEPTH = 256

# The lengths of the columns the fields are kept in (journals/models.py, gateway/store/models.py), written here so
# that the codec needs no database model; tests/test_field_limits.py holds them to the migrated schema.
COLUMN_LENGTHS: Mapping[str, int] = {
    "async_message.correlation_id": 200,
    "async_message.message_date": 64,
    "async_message.message_id": 64,
    "async_message.message_type": 16,
    "async_message.recipient_id": 200,
    "async_message.route_id": 200,
    "async_message.sender_id": 200,
    "async_message.service_id": 200,
    "journal_logging.correlation_id": 200,
    "journal_logging.message_id": 200,
    "journal_logging.message_type": 16,
    "journal_logging.recipient": 200,
    "journal_logging.route_id": 200,
    "journal_logging.sender": 200,
    "journal_logging.service_id": 200,
}

# Per operation, the columns each field it reads is written to or looked up in.
FIELD_COLUMNS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "SendMessage": {
        "requestInfo/messageId": ("journal_logging.message_id",),
        "requestInfo/correlationId": ("journal_logging.correlation_id",),
        "requestInfo/serviceId": ("journal_logging.service_id",),
        "requestInfo/routeId": ("journal_logging.route_id",),
        "requestInfo/sender/senderId": ("journal_logging.sender", "journal_logging.recipient"),
    },
    "SendMessageResponse": {
        "responseInfo/messageId": ("journal_logging.message_id",),
    },
    "sendMessage": {
        "messageInfo/correlationId": ("async_message.correlation_id", "journal_logging.correlation_id"),
        "messageInfo/serviceId": ("async_message.service_id", "journal_logging.service_id"),
        "messageInfo/messageType": ("async_message.message_type", "journal_logging.message_type"),
        "messageInfo/routeId": ("async_message.route_id", "journal_logging.route_id"),
        "messageInfo/messageDate": ("async_message.message_date",),
        "messageInfo/sender/senderId": ("async_message.sender_id", "journal_logging.sender"),
    },
    "getMessageStatus": {
        "request/messageId": ("async_message.message_id",),
        "request/sender/senderId": ("async_message.sender_id", "async_message.recipient_id"),
    },
    "getMessages": {
        "request/messageId": ("async_message.message_id",),
        "request/correlationId": ("async_message.correlation_id",),
        "request/serviceId": ("async_message.service_id",),
        "request/sender/senderId": ("async_message.recipient_id",),
    },
    "sendDeliveryNotification": {
        "notification/messageId": ("async_message.message_id",),
        "notification/serviceId": ("async_message.service_id",),
        "request/sender/senderId": ("async_message.recipient_id",),
    },
}

FIELD_LIMITS: Mapping[str, Mapping[str, int]] = {
    operation: {path: min(COLUMN_LENGTHS[column] for column in columns) for path, columns in fields.items()}
    for operation, fields in FIELD_COLUMNS.items()
}


def check_lengths(operation: str, values: Mapping[str, str | None]) -> None:
    """Refuse (SCE001, naming the field) any value longer than its limit; ``values`` holds every field of the
    operation's table, absent ones as None, so that a reader cannot skip one."""
    limits = FIELD_LIMITS[operation]
    if values.keys() != limits.keys():
        raise ValueError(f"{operation}: fields {sorted(values)} do not match the limit table {sorted(limits)}")
    for path, value in values.items():
        if value is not None and len(value) > limits[path]:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{path} is longer than {limits[path]} characters")


def check_document_size(root: etree._Element, body: bytes) -> None:
    """Refuse (SCE001) a document beyond the element, attribute or namespace declaration caps."""
    elements = attributes = 0
    for element in root.iter(tag=etree.Element):
        elements += 1
        own = len(element.attrib)
        attributes += own
        if elements > MAX_ELEMENTS:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"the document has more than {MAX_ELEMENTS} elements")
        if own > MAX_ATTRIBUTES_PER_ELEMENT:
            raise GatewayError(
                ErrorCode.MALFORMED_MESSAGE, f"element {element.tag[:80]} has more than {MAX_ATTRIBUTES_PER_ELEMENT} attributes"
            )
        if attributes > MAX_ATTRIBUTES:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"the document has more than {MAX_ATTRIBUTES} attributes")
    # Every declaration spells "xmlns": in UTF-8, counting the bytes spares the walk for all but the rare document
    # near the cap.
    utf8 = (root.getroottree().docinfo.encoding or "").upper() == "UTF-8"
    if not utf8 or body.count(b"xmlns") > MAX_NAMESPACE_DECLARATIONS:
        declarations = 0
        for _event in etree.iterwalk(root, events=("start-ns",)):
            declarations += 1
            if declarations > MAX_NAMESPACE_DECLARATIONS:
                raise GatewayError(
                    ErrorCode.MALFORMED_MESSAGE, f"the document declares more than {MAX_NAMESPACE_DECLARATIONS} namespaces"
                )
