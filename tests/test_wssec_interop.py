"""Interop: a SOAP Body signed by signxml (an independent XMLDSig implementation, detached signature, exclusive
c14n, RSA-SHA256 and ECDSA-SHA256) verifies with :func:`gateway.security.wssec.verify_envelope`, and fails after
any change to the Body. signxml writes ``KeyInfo/X509Data/X509Certificate``; real ShEP clients send Layout A (the
whole certificate in an X509v3 KeyIdentifier) or Layout B (X509IssuerSerial, the certificate looked up among the
registered ones) (shep-wire.md §3.1-3.2), so KeyInfo — which is not signed — is rewritten into those forms, as a
WS-Security layer over signxml would do. zeep's and xmlsec's signatures are covered in test_wssec.py.

The other way round, the gateway's own signatures (made without xmlsec, gateway.security.xmldsig) must verify with
xmlsec and with signxml, and must stop verifying with xmlsec once the Body changes."""
from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
import xmlsec
from signxml import SignatureConstructionMethod, XMLSigner, XMLVerifier

from gateway.errors import ErrorCode, GatewayError
from gateway.security.certificates import organisation_bin
from gateway.security.wssec import BASE64, DS, EXC_C14N, X509V3, CertificateLookup, sign_envelope, verify_envelope
from gateway.soap.namespaces import SOAP_ENV, WSSE, WSU
from tests.pki import participant
from tests.wire import sync_request

BIN = "990140000022"
ALGORITHMS = {False: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", True: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"}
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def signxml_envelope(key_pem: bytes, cert_pem: bytes, ecdsa: bool) -> etree._Element:
    """A sync request whose Body signxml signed (detached, Reference ``#<wsu:Id>``), the ds:Signature placed in
    ``soap:Header/wsse:Security``, KeyInfo as signxml wrote it."""
    root = etree.fromstring(sync_request().encode())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    body_id = f"id-{uuid.uuid4()}"
    body.set(f"{{{WSU}}}Id", body_id)
    signer = XMLSigner(
        method=SignatureConstructionMethod.detached, signature_algorithm=ALGORITHMS[ecdsa], digest_algorithm=SHA256,
        c14n_algorithm=EXC_C14N,
    )
    signature = signer.sign(root, key=key_pem, cert=cert_pem, reference_uri=f"#{body_id}")
    header = etree.Element(f"{{{SOAP_ENV}}}Header")
    root.insert(0, header)
    security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    security.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    security.append(signature)
    return root


def key_info_of(root: etree._Element) -> etree._Element:
    key_info = root.find(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security/{{{DS}}}Signature/{{{DS}}}KeyInfo")
    assert key_info is not None
    return key_info


def signxml_certificate(root: etree._Element) -> x509.Certificate:
    """The certificate signxml put in KeyInfo/X509Data/X509Certificate."""
    text = key_info_of(root).findtext(f"{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    assert text, "signxml wrote no X509Certificate"
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def as_layout_a(root: etree._Element) -> etree._Element:
    """KeyInfo → wsse:SecurityTokenReference/wsse:KeyIdentifier (X509v3, the whole DER certificate)."""
    certificate = signxml_certificate(root)
    key_info = key_info_of(root)
    key_info.clear()
    token = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference")
    identifier = etree.SubElement(token, f"{{{WSSE}}}KeyIdentifier", EncodingType=BASE64, ValueType=X509V3)
    identifier.text = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    return root


def as_layout_b(root: etree._Element) -> etree._Element:
    """KeyInfo → wsse:SecurityTokenReference[wsu:Id]/ds:X509Data/ds:X509IssuerSerial, as WSS4J 2.x writes it: the
    issuer in Java's notation (blanks after the commas), the serial in decimal, no certificate in the message."""
    certificate = signxml_certificate(root)
    key_info = key_info_of(root)
    key_info.clear()
    key_info.set("Id", f"KI-{uuid.uuid4().hex}")
    token = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference", nsmap={"wsu": WSU})
    token.set(f"{{{WSU}}}Id", f"STR-{uuid.uuid4().hex}")
    issuer_serial = etree.SubElement(etree.SubElement(token, f"{{{DS}}}X509Data"), f"{{{DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = certificate.issuer.rfc4514_string().replace(",", ", ")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = str(certificate.serial_number)
    return root


def registry_of(cert_pem: bytes) -> CertificateLookup:
    """The registered-certificates lookup, holding one participant's certificate."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    return lambda issuer, serial: certificate if (issuer, serial) == (certificate.issuer, certificate.serial_number) else None


def reparsed(root: etree._Element) -> etree._Element:
    """What the gateway receives: the envelope serialised and parsed again."""
    return etree.fromstring(etree.tostring(root))


def as_signxml_wrote_it(root: etree._Element) -> etree._Element:
    """signxml's own KeyInfo: ds:X509Data/ds:X509Certificate."""
    return root


LAYOUTS: dict[str, Callable[[etree._Element], etree._Element]] = {
    "layout-A": as_layout_a, "layout-B": as_layout_b, "x509data": as_signxml_wrote_it,
}
KEYS = pytest.mark.parametrize("ecdsa", [False, True], ids=["RSA-SHA256", "ECDSA-SHA256"])


@pytest.fixture(scope="module")
def holders() -> dict[bool, tuple[bytes, bytes]]:
    """A participant key and certificate (PEM) per key type."""
    return {ecdsa: participant(BIN, ecdsa=ecdsa) for ecdsa in (False, True)}


@KEYS
@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_a_signxml_signature_verifies(holders: dict[bool, tuple[bytes, bytes]], ecdsa: bool, layout: str) -> None:
    key_pem, cert_pem = holders[ecdsa]
    root = reparsed(LAYOUTS[layout](signxml_envelope(key_pem, cert_pem, ecdsa)))
    signed_info = root.find(f".//{{{DS}}}SignedInfo")
    assert signed_info.find(f"{{{DS}}}SignatureMethod").get("Algorithm") == ALGORITHMS[ecdsa]
    assert signed_info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm") == EXC_C14N
    verified = verify_envelope(root, registry_of(cert_pem))
    assert verified.certificate == x509.load_pem_x509_certificate(cert_pem)
    assert organisation_bin(verified.certificate) == BIN
    assert base64.b64encode(verified.signature_value).decode() == "".join(root.findtext(f".//{{{DS}}}SignatureValue").split())


def test_layout_b_needs_the_certificate_registered(holders: dict[bool, tuple[bytes, bytes]]) -> None:
    key_pem, cert_pem = holders[False]
    root = reparsed(as_layout_b(signxml_envelope(key_pem, cert_pem, ecdsa=False)))
    with pytest.raises(GatewayError) as refused:
        verify_envelope(root)
    assert refused.value.error == ErrorCode.TRANSPORT_SIGNATURE_INVALID
    assert "no registered certificate" in refused.value.data


def test_a_signature_checked_against_another_participants_certificate_fails(holders: dict[bool, tuple[bytes, bytes]]) -> None:
    key_pem, cert_pem = holders[False]
    root = as_layout_a(signxml_envelope(key_pem, cert_pem, ecdsa=False))
    _, other_cert = participant(BIN)  # the same subject, another key
    identifier = root.find(f".//{{{WSSE}}}KeyIdentifier")
    identifier.text = base64.b64encode(x509.load_pem_x509_certificate(other_cert).public_bytes(serialization.Encoding.DER)).decode()
    with pytest.raises(GatewayError) as refused:
        verify_envelope(reparsed(root))
    assert refused.value.error == ErrorCode.TRANSPORT_SIGNATURE_INVALID


def _change_text(body: etree._Element) -> None:
    body.find(".//serviceId").text = "SomethingElse"


def _change_one_character_of_the_data(body: etree._Element) -> None:
    data = body.find(".//data")
    data.text = data.text[:-1] + "O"


def _add_an_attribute(body: etree._Element) -> None:
    body.find(".//requestInfo").set("extra", "1")


def _add_an_element(body: etree._Element) -> None:
    etree.SubElement(body.find(".//requestInfo"), "routeId").text = "elsewhere"


def _remove_an_element(body: etree._Element) -> None:
    info = body.find(".//requestInfo")
    info.remove(info.find("messageDate"))


def _add_whitespace(body: etree._Element) -> None:
    body.find(".//request").tail = "\n"
    body.find(".//requestInfo").tail = " "


def _add_a_namespace_used_by_an_attribute(body: etree._Element) -> None:
    body.find(".//sender").set("{urn:extra}flag", "true")


def _change_the_body_id(body: etree._Element) -> None:
    body.set(f"{{{WSU}}}Id", body.get(f"{{{WSU}}}Id") + "x")


CHANGES = [
    _change_text, _change_one_character_of_the_data, _add_an_attribute, _add_an_element, _remove_an_element,
    _add_whitespace, _add_a_namespace_used_by_an_attribute, _change_the_body_id,
]


@KEYS
@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
@pytest.mark.parametrize("change", CHANGES, ids=[change.__name__.strip("_") for change in CHANGES])
def test_a_signxml_signature_fails_after_any_change_to_the_body(
    holders: dict[bool, tuple[bytes, bytes]], ecdsa: bool, layout: str, change: Callable[[etree._Element], None]
) -> None:
    key_pem, cert_pem = holders[ecdsa]
    root = reparsed(LAYOUTS[layout](signxml_envelope(key_pem, cert_pem, ecdsa)))
    verify_envelope(root, registry_of(cert_pem))  # intact: verifies
    change(root.find(f"{{{SOAP_ENV}}}Body"))
    with pytest.raises(GatewayError) as refused:
        verify_envelope(reparsed(root), registry_of(cert_pem))
    assert refused.value.error == ErrorCode.TRANSPORT_SIGNATURE_INVALID


@KEYS
def test_a_changed_serialised_body_fails(holders: dict[bool, tuple[bytes, bytes]], ecdsa: bool) -> None:
    """On the wire: one byte of the Body changed in the serialised message."""
    key_pem, cert_pem = holders[ecdsa]
    serialized = etree.tostring(as_layout_a(signxml_envelope(key_pem, cert_pem, ecdsa)))
    verify_envelope(etree.fromstring(serialized))
    assert serialized.count(b"<senderId>pep<") == 1
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(serialized.replace(b"<senderId>pep<", b"<senderId>pap<")))
    assert refused.value.error == ErrorCode.TRANSPORT_SIGNATURE_INVALID


def xmlsec_verifies(root: etree._Element, cert_pem: bytes) -> bool:
    """Whether xmlsec, told only the signer's certificate, verifies the envelope's transport signature."""
    context = xmlsec.SignatureContext()
    context.register_id(root.find(f"{{{SOAP_ENV}}}Body"), "Id", WSU)
    context.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem, None)
    try:
        context.verify(root.find(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security/{{{DS}}}Signature"))
    except xmlsec.Error:
        return False
    return True


@KEYS
def test_the_gateways_signatures_verify_with_xmlsec_and_signxml(holders: dict[bool, tuple[bytes, bytes]], ecdsa: bool) -> None:
    key_pem, cert_pem = holders[ecdsa]
    root = reparsed(sign_envelope(etree.fromstring(sync_request().encode()), key_pem, cert_pem))
    assert xmlsec_verifies(root, cert_pem)
    verified = XMLVerifier().verify(root, x509_cert=cert_pem.decode(), id_attribute="Id", expect_references=1)
    assert verified.signed_xml.tag == f"{{{SOAP_ENV}}}Body"
    for change in CHANGES:
        changed = reparsed(root)
        change(changed.find(f"{{{SOAP_ENV}}}Body"))
        assert not xmlsec_verifies(reparsed(changed), cert_pem), change.__name__
