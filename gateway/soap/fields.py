"""Reading and writing the elements of ShEP messages: lenient on the way in, strict on the way out.

Reading matches children by local name, in any order, treats empty optional elements as absent and accepts
``data`` in any namespace (shep-wire.md §2.8). Writing emits unqualified children in the order the caller
gives, which is the XSD sequence.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree

from gateway.errors import ErrorCode, GatewayError
from gateway.soap.limits import PROPERTY_KEY_MAX, PROPERTY_VALUE_MAX
from gateway.soap.namespaces import XSI
from gateway.soap.values import is_xs_datetime

_NIL = f"{{{XSI}}}nil"


@dataclass(frozen=True)
class Property:
    key: str
    value: str


def children(element: etree._Element) -> dict[str, list[etree._Element]]:
    """The element's child elements grouped by local name, in document order."""
    found: dict[str, list[etree._Element]] = {}
    for child in element.iterchildren(tag=etree.Element):
        # "{namespace}local" or "local": cutting the string is a third of the cost of building an etree.QName.
        found.setdefault(child.tag.rpartition("}")[2], []).append(child)
    return found


def text(fields: dict[str, list[etree._Element]], name: str) -> str | None:
    """The stripped text of the first child called ``name``; None when absent or empty (a tolerated deviation)."""
    elements = fields.get(name)
    if not elements:
        return None
    value = (elements[0].text or "").strip()
    return value or None


def required(fields: dict[str, list[etree._Element]], name: str, where: str) -> str:
    """Like :func:`text`, but a missing or empty value is a malformed message."""
    value = text(fields, name)
    if value is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is missing or empty")
    return value


def single(parent: etree._Element, name: str, where: str) -> etree._Element:
    """The required, non-nil child ``name`` of ``parent``."""
    element = children(parent).get(name)
    if not element:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is missing")
    if element[0].get(_NIL) in ("true", "1"):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is nil")
    return element[0]


def date(fields: dict[str, list[etree._Element]], name: str, where: str) -> str:
    """A required xs:dateTime, kept as written."""
    value = required(fields, name, where)
    if not is_xs_datetime(value):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/{name} is not a dateTime: {value[:60]!r}")
    return value


def read_properties(fields: dict[str, list[etree._Element]], where: str) -> list[Property]:
    """The ``properties`` entries; an empty ``<properties/>`` is skipped, an oversized key or value refused."""
    properties = []
    for element in fields.get("properties", []):
        pair = children(element)
        key, value = text(pair, "key"), text(pair, "value")
        if key is None and value is None:
            continue  # <properties></properties>: an empty entry some clients send
        if key is None:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/properties has a value without a key")
        if len(key) > PROPERTY_KEY_MAX:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"{where}/properties/key is longer than {PROPERTY_KEY_MAX} characters")
        if len(value or "") > PROPERTY_VALUE_MAX:
            raise GatewayError(
                ErrorCode.MALFORMED_MESSAGE, f"{where}/properties/value of {key!r} is longer than {PROPERTY_VALUE_MAX} characters"
            )
        properties.append(Property(key, value or ""))
    return properties


def find_data(parent: etree._Element) -> etree._Element | None:
    """The ``data`` child of ``parent``, in whatever namespace."""
    elements = children(parent).get("data")
    return elements[0] if elements else None


def copy_data(parent: etree._Element, data: etree._Element | None) -> None:
    """Append an unqualified ``data`` carrying the original's attributes, namespace context and content.

    One deep copy carries the attributes in linear time (setting them one by one costs their count squared).
    ``data`` itself must then declare every prefix in scope of the original (xsi:type values and QName content
    may refer to them) and no default namespace, which would pull the unqualified element into it; its content
    is set aside meanwhile so that it keeps its own declarations.
    """
    if data is None:
        return
    target = copy.deepcopy(data)
    target.tag = "data"
    target.tail = None
    if None in target.nsmap:
        # Moved out of the default namespace's scope, content in it would get a made-up prefix (lxml renames
        # it); each child's own deep copy declares the default namespace on itself instead.
        del target[:]
        content = [copy.deepcopy(child) for child in data]
    else:
        content = list(target)
        etree.Element("aside").extend(content)
    prefixed = {prefix: uri for prefix, uri in data.nsmap.items() if prefix is not None}
    etree.cleanup_namespaces(target, top_nsmap=prefixed, keep_ns_prefixes=list(prefixed))
    target.extend(content)
    parent.append(target)


def write_properties(parent: etree._Element, properties: list[Property]) -> None:
    """Append one ``properties`` element (key, value) per property."""
    for prop in properties:
        element = etree.SubElement(parent, "properties")
        etree.SubElement(element, "key").text = prop.key
        etree.SubElement(element, "value").text = prop.value


def add(parent: etree._Element, name: str, value: str) -> None:
    """Append an unqualified child ``name`` holding ``value``."""
    etree.SubElement(parent, name).text = value
