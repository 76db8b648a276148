"""Between the SOAP ``data`` element and an adapter: the payload element a caller puts inside ``data``, the
answer wrapped back into ``data``, and a backend's refusal as an ``AdapterFault`` element
(``xsd/adapters/common.xsd``) for the asynchronous channel, where a refusal travels as a RESPONSE."""
from __future__ import annotations

from lxml import etree

from gateway.adapters.base import BackendAdapter
from gateway.errors import ErrorCode, GatewayError

FAULT_NAMESPACE = "urn:gateway:adapters"


def adapter_payload(data: etree._Element | None, adapter: BackendAdapter) -> etree._Element:
    """The one element inside ``data``, in the adapter's namespace."""
    elements = [] if data is None else list(data.iterchildren(tag=etree.Element))
    if len(elements) != 1 or etree.QName(elements[0]).namespace != adapter.namespace:
        raise GatewayError(
            ErrorCode.MALFORMED_MESSAGE, f"data must hold exactly one operation element of namespace {adapter.namespace}"
        )
    return elements[0]


def wrap_data(payload: etree._Element) -> etree._Element:
    """``payload`` inside an unqualified ``data`` element, as the wire carries it."""
    data = etree.Element("data")
    data.append(payload)
    return data


def fault_data(error: GatewayError) -> etree._Element:
    """A refusal as data: the gateway's code and, when the backend gave one, the backend's own code."""
    fault = etree.Element(f"{{{FAULT_NAMESPACE}}}AdapterFault", nsmap={None: FAULT_NAMESPACE})
    etree.SubElement(fault, f"{{{FAULT_NAMESPACE}}}errorCode").text = error.error.code
    etree.SubElement(fault, f"{{{FAULT_NAMESPACE}}}errorMessage").text = error.error.message
    if error.data:
        etree.SubElement(fault, f"{{{FAULT_NAMESPACE}}}errorData").text = error.data[:1000]
    if error.sub_error is not None:
        etree.SubElement(fault, f"{{{FAULT_NAMESPACE}}}backendCode").text = error.sub_error.code
        etree.SubElement(fault, f"{{{FAULT_NAMESPACE}}}backendMessage").text = error.sub_error.message[:1000]
    return wrap_data(fault)
