"""SOAP 1.1 envelopes: hardened parsing, header checks, and strict building of responses and faults."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lxml import etree

from gateway.errors import ErrorCode, ErrorInfo, GatewayError
from gateway.soap.limits import MAX_DEPTH, check_document_size
from gateway.soap.namespaces import SOAP12_ENV, SOAP_ENV, WSSE
from gateway.soap.values import format_datetime, parse_datetime

# Headers the gateway processes itself; any other header marked mustUnderstand="1" is refused.
UNDERSTOOD_HEADERS = frozenset({f"{{{WSSE}}}Security"})

_MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
_parsers = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads; one hardened parser per thread.
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )
        _parsers.parser = parser
    return parser


# The prolog: optional BOM, then any whitespace, XML declaration / processing instructions and comments.
_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)


def _has_doctype(body: bytes) -> bool:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        body = body.decode("utf-16", errors="replace").encode("utf-8")
    return body.startswith(b"<!DOCTYPE", _PROLOG.match(body).end())


def parse_xml(body: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD (refused before parsing), no entity expansion, no network, no huge trees,
    within the element, attribute and namespace caps of :mod:`gateway.soap.limits`."""
    if _has_doctype(body):
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "DTDs and entity declarations are not allowed")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            # libxml2's words name its own option ("use XML_PARSE_HUGE"), which means nothing to a caller.
            raise GatewayError(
                ErrorCode.MALFORMED_MESSAGE,
                f"the document exceeds the parser's limits (nesting deeper than {MAX_DEPTH} elements or a text node "
                f"over 10 MB), line {exc.lineno}",
            ) from exc
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"not well-formed XML: {exc.msg}") from exc
    if root is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "DTDs and entity declarations are not allowed")
    check_document_size(root, body)
    return root


@dataclass(frozen=True)
class Envelope:
    """A parsed request envelope: the tree, its header (if any) and the Body's first child."""

    root: etree._Element
    header: etree._Element | None
    body: etree._Element
    payload: etree._Element

    @property
    def payload_qname(self) -> str:
        return self.payload.tag


def parse_envelope(body: bytes) -> Envelope:
    """Parse a SOAP 1.1 envelope whatever its prefixes; refuse unknown mustUnderstand headers."""
    root = parse_xml(body)
    if root.tag == f"{{{SOAP12_ENV}}}Envelope":
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "SOAP 1.2 is not supported; send a SOAP 1.1 envelope")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "the document is not a SOAP 1.1 Envelope")
    header = root.find(f"{{{SOAP_ENV}}}Header")
    soap_body = root.find(f"{{{SOAP_ENV}}}Body")
    if soap_body is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "the Envelope has no Body")
    if header is not None:
        for block in header.iterchildren(tag=etree.Element):
            if block.get(_MUST_UNDERSTAND) in ("1", "true") and block.tag not in UNDERSTOOD_HEADERS:
                raise GatewayError(ErrorCode.HEADER_NOT_UNDERSTOOD, f"header {block.tag} is not understood")
    payload = next(soap_body.iterchildren(tag=etree.Element), None)
    if payload is None:
        raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "the Body is empty")
    return Envelope(root=root, header=header, body=soap_body, payload=payload)


class Signer(Protocol):
    """Signs an envelope's Body and serialises it (the gateway's transport signature)."""

    def sign(self, root: etree._Element) -> bytes: ...


def build_envelope(payload: etree._Element, signer: Signer | None = None) -> bytes:
    """Wrap ``payload`` in a SOAP 1.1 envelope and serialise it (UTF-8, with declaration), signed by
    ``signer`` when one is given."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(payload)
    if signer is not None:
        return signer.sign(envelope)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def error_info_element(tag: str, info: ErrorInfo, nsmap: dict[str | None, str] | None = None) -> etree._Element:
    """Build an ErrorInfo-typed element in schema order (errorCode, errorMessage, errorData?, errorDate,
    subError?, sessionId?); children are unqualified."""
    element = etree.Element(tag, nsmap=nsmap)
    etree.SubElement(element, "errorCode").text = info.code
    etree.SubElement(element, "errorMessage").text = info.message
    if info.data is not None:
        etree.SubElement(element, "errorData").text = info.data
    etree.SubElement(element, "errorDate").text = format_datetime(info.date)
    if info.sub_error is not None:
        element.append(error_info_element("subError", info.sub_error))
    if info.session_id is not None:
        etree.SubElement(element, "sessionId").text = info.session_id
    return element


def fault_envelope(fault_element_tag: str, info: ErrorInfo, faultcode: str, faultstring: str) -> bytes:
    """A SOAP 1.1 Fault whose detail is the operation's ``…Fault1_…Fault`` element holding ``info``."""
    fault = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{faultcode}"
    etree.SubElement(fault, "faultstring").text = faultstring
    detail = etree.SubElement(fault, "detail")
    namespace = fault_element_tag[1:].split("}", 1)[0]
    detail.append(error_info_element(fault_element_tag, info, nsmap={"ns2": namespace}))
    return build_envelope(fault)


def build_fault(fault_element_tag: str, error: GatewayError, when: datetime, session_id: str | None) -> bytes:
    """The gateway's fault for ``error``: its catalogue code and message, what exactly was wrong as errorData."""
    code = error.error
    info = ErrorInfo(
        code=code.code, message=code.message, date=when, data=error.data, sub_error=error.sub_error, session_id=session_id
    )
    faultcode = "MustUnderstand" if code is ErrorCode.HEADER_NOT_UNDERSTOOD else code.side.value
    return fault_envelope(fault_element_tag, info, faultcode, str(error))


@dataclass(frozen=True)
class ReceivedFault:
    """A SOAP Fault received from a provider, with its ErrorInfo detail when there is one."""

    faultcode: str
    faultstring: str
    detail: ErrorInfo | None


def find_fault(payload: etree._Element) -> ReceivedFault | None:
    """If ``payload`` (a Body's first child) is a SOAP Fault, read it leniently."""
    if payload.tag != f"{{{SOAP_ENV}}}Fault":
        return None
    fields = {etree.QName(child).localname: child for child in payload.iterchildren(tag=etree.Element)}
    detail = fields.get("detail")
    info_element = next(detail.iterchildren(tag=etree.Element), None) if detail is not None else None
    return ReceivedFault(
        faultcode=(fields["faultcode"].text or "").strip() if "faultcode" in fields else "",
        faultstring=(fields["faultstring"].text or "").strip() if "faultstring" in fields else "",
        detail=read_error_info(info_element) if info_element is not None else None,
    )


def read_error_info(element: etree._Element, depth: int = 0) -> ErrorInfo | None:
    """Read an ErrorInfo-shaped element by local names; None when it has no errorCode."""
    fields = {etree.QName(child).localname: child for child in element.iterchildren(tag=etree.Element)}
    code = fields.get("errorCode")
    if code is None or not (code.text or "").strip():
        return None
    sub = fields.get("subError")
    date_text = fields["errorDate"].text if "errorDate" in fields else None
    return ErrorInfo(
        code=code.text.strip(),
        message=(fields["errorMessage"].text or "") if "errorMessage" in fields else "",
        data=fields["errorData"].text if "errorData" in fields else None,
        date=parse_datetime(date_text) if date_text else datetime.now().astimezone(),
        sub_error=read_error_info(sub, depth + 1) if sub is not None and depth < 8 else None,
    )
