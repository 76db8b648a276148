"""WS-Security transport signatures as ShEP clients make them (shep-wire.md §3.1): the Body signed alone,
referenced by ``wsu:Id``, exclusive c14n, the signer's certificate inline in an X509v3 ``KeyIdentifier``
(Layout A).

:func:`verify_envelope` first checks the signature's shape: exactly one reference, to the one and only element
carrying that Id, which must be the envelope's own Body (so a signed Body moved elsewhere and replaced — signature
wrapping — is refused), with exactly one transform, exclusive c14n (as WS-I Basic Security Profile 1.1 R5416 and
R5423 ask), and algorithms from :data:`gateway.security.xmldsig.SIGNATURE_ALGORITHMS`. Only then does it
canonicalise and check digest and signature (:mod:`gateway.security.xmldsig`): RSA, ECDSA, and GOST 34.310 2004
and 2015 as NCA makes them (gost.md).
"""
from __future__ import annotations

import base64
import copy
import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway.errors import ErrorCode, GatewayError
from gateway.security.xmldsig import (
    DIGEST_ALGORITHMS, DS, EXC_C14N, SIGNATURE_ALGORITHMS, SignatureAlgorithm, SigningKey, canonical, digest,
    digest_matches, prefix_list, signing_methods,
)
from gateway.security.public_keys import Gost2015PrivateKey, GostPrivateKey, public_key_of
from gateway.security.signing_keys import load_pkcs12, load_signing_key
from gateway.soap.namespaces import SOAP_ENV, WSSE, WSU

X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
_ID_ATTRIBUTES = (f"{{{WSU}}}Id", "Id", "id", "ID")


@dataclass(frozen=True)
class VerifiedSignature:
    """A transport signature that verified: who signed, and the signature value (for replay detection)."""

    certificate: x509.Certificate
    signature_value: bytes


@dataclass(frozen=True)
class _SignedBody:
    """What a signature of the accepted shape says: how its Body and SignedInfo are canonicalised and checked."""

    body: etree._Element
    signed_info: etree._Element
    signed_info_prefixes: list[str]
    body_prefixes: list[str]
    digest_method: str
    digest_value: bytes
    algorithm: SignatureAlgorithm


def _invalid(reason: str) -> GatewayError:
    return GatewayError(ErrorCode.TRANSPORT_SIGNATURE_INVALID, reason)


def find_signature(root: etree._Element) -> etree._Element | None:
    """The ds:Signature in the envelope's wsse:Security header, if any."""
    header = root.find(f"{{{SOAP_ENV}}}Header")
    security = header.find(f"{{{WSSE}}}Security") if header is not None else None
    return security.find(f"{{{DS}}}Signature") if security is not None else None


# Compiled once: an XPath over the whole envelope is several times cheaper than walking it in Python, and one
# test of every attribute's value six times cheaper than four tests by name on every element.
_ATTRIBUTES_EQUAL_TO = etree.XPath("//@*[. = $value]")


def _elements_with_id(root: etree._Element, value: str) -> list[etree._Element]:
    """Every element carrying ``value`` in an Id attribute (``wsu:Id``, ``Id``, ``id`` or ``ID``), each once."""
    elements: list[etree._Element] = []
    for attribute in _ATTRIBUTES_EQUAL_TO(root, value=value):
        if attribute.attrname in _ID_ATTRIBUTES and (element := attribute.getparent()) not in elements:
            elements.append(element)
    return elements


def _check_shape(root: etree._Element, signature: etree._Element) -> _SignedBody:
    """Refuse anything but an exclusive-c14n signature over exactly the envelope's Body."""
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None:
        raise _invalid("the signature has no SignedInfo")
    c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod")
    method = signed_info.find(f"{{{DS}}}SignatureMethod")
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise _invalid("SignedInfo must be canonicalised with exclusive c14n")
    if method is None or method.get("Algorithm") not in SIGNATURE_ALGORITHMS:
        raise _invalid(f"signature algorithm {method.get('Algorithm') if method is not None else None} is not supported")
    references = signed_info.findall(f"{{{DS}}}Reference")
    if len(references) != 1:
        raise _invalid("the signature must have exactly one reference, to the Body")
    reference = references[0]
    uri = reference.get("URI") or ""
    if not uri.startswith("#") or len(uri) < 2:
        raise _invalid("the reference must point at the Body by its Id")
    targets = _elements_with_id(root, uri[1:])
    if len(targets) != 1:
        raise _invalid(f"Id {uri[1:]!r} names {len(targets)} elements")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if targets[0] is not body:
        raise _invalid("the signed element is not the message's Body")
    transforms = reference.findall(f"{{{DS}}}Transforms/{{{DS}}}Transform")
    for transform in transforms:
        if transform.get("Algorithm") != EXC_C14N:
            raise _invalid(f"transform {transform.get('Algorithm')} is not allowed")
    if len(transforms) != 1:
        raise _invalid("the reference must have exactly one transform, exclusive c14n")
    digest_method = reference.find(f"{{{DS}}}DigestMethod")
    if digest_method is None or digest_method.get("Algorithm") not in DIGEST_ALGORITHMS:
        raise _invalid("digest algorithm is not supported")
    algorithm = SIGNATURE_ALGORITHMS[method.get("Algorithm")]
    if digest_method.get("Algorithm") not in algorithm.digests:
        raise _invalid(f"digest algorithm {digest_method.get('Algorithm')} does not go with {method.get('Algorithm')}")
    return _SignedBody(
        body=body,
        signed_info=signed_info,
        signed_info_prefixes=prefix_list(c14n),
        body_prefixes=prefix_list(transforms[0]),
        digest_method=digest_method.get("Algorithm"),
        digest_value=_base64_value(reference.findtext(f"{{{DS}}}DigestValue"), "DigestValue"),
        algorithm=algorithm,
    )


def _base64_value(text: str | None, where: str) -> bytes:
    try:
        value = base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError as exc:
        raise _invalid(f"{where} is not base64") from exc
    if not value:
        raise _invalid(f"{where} is empty")
    return value


CertificateLookup = Callable[[x509.Name, int], "x509.Certificate | None"]


def _signer_certificate(signature: etree._Element, registered: CertificateLookup) -> x509.Certificate:
    """Layout A: the certificate inline in an X509v3 KeyIdentifier (or a BinarySecurityToken, or plain
    ``ds:X509Data/ds:X509Certificate``); Layout B: named by issuer and serial and looked up among the registered
    certificates."""
    key_info = signature.find(f"{{{DS}}}KeyInfo")
    identifier = key_info.find(f"{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}KeyIdentifier") if key_info is not None else None
    if identifier is not None and identifier.get("ValueType") == X509V3:
        return _certificate_from_base64(identifier.text, "the KeyIdentifier")
    token_reference = key_info.find(f"{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}Reference") if key_info is not None else None
    if token_reference is not None and (token_reference.get("URI") or "").startswith("#"):
        # A BinarySecurityToken beside the signature in the same Security header (zeep's BinarySignature).
        token_id = token_reference.get("URI")[1:]
        tokens = [
            token
            for token in signature.getparent().iterfind(f"{{{WSSE}}}BinarySecurityToken")
            if any(token.get(attribute) == token_id for attribute in _ID_ATTRIBUTES) and token.get("ValueType") == X509V3
        ]
        if len(tokens) != 1:
            raise _invalid(f"the security token {token_id!r} is not in the Security header exactly once")
        return _certificate_from_base64(tokens[0].text, "the BinarySecurityToken")
    inline = key_info.find(f"{{{DS}}}X509Data/{{{DS}}}X509Certificate") if key_info is not None else None
    if inline is not None:
        # Plain XML-DSig KeyInfo, as signxml and the legacy NIT client write it.
        return _certificate_from_base64(inline.text, "the X509Certificate")
    issuer_serial = key_info.find(f".//{{{DS}}}X509IssuerSerial") if key_info is not None else None
    if issuer_serial is None:
        raise _invalid("KeyInfo names no certificate (X509v3 KeyIdentifier, X509Certificate or X509IssuerSerial)")
    try:
        issuer = parse_distinguished_name(issuer_serial.findtext(f"{{{DS}}}X509IssuerName") or "")
        serial = int((issuer_serial.findtext(f"{{{DS}}}X509SerialNumber") or "").strip())
    except ValueError as exc:
        raise _invalid("X509IssuerSerial cannot be read") from exc
    certificate = registered(issuer, serial)
    if certificate is None:
        raise _invalid(f"no registered certificate {serial:x} of {issuer.rfc4514_string()[:200]}")
    return certificate


_BLANK_AFTER_COMMA = re.compile(r"(?<!\\),\s+")
_EXTRA_ATTRIBUTE_NAMES = {
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "SURNAME": NameOID.SURNAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
}


def _certificate_from_base64(text: str | None, where: str) -> x509.Certificate:
    try:
        return _certificate_of(text or "")
    except ValueError as exc:
        raise _invalid(f"{where} does not hold a certificate") from exc


@functools.lru_cache(maxsize=1024)
def _certificate_of(text: str) -> x509.Certificate:
    """A certificate parsed once: callers send the same few certificates with every message (certificates are
    immutable, so sharing one object is safe)."""
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def parse_distinguished_name(text: str) -> x509.Name:
    """An issuer name as written in X509IssuerName, matched later by value, never by string: WSS4J writes
    ``2.5.4.5=#130f…`` (hex DER) where others write ``SERIALNUMBER=IIN…`` (shep-wire.md §3.7)."""
    # Java writes "CN=a, SERIALNUMBER=b"; RFC 4514 has no blanks after the commas and knows fewer names.
    name = x509.Name.from_rfc4514_string(_BLANK_AFTER_COMMA.sub(",", text.strip()), _EXTRA_ATTRIBUTE_NAMES)
    rdns = []
    for rdn in name.rdns:
        attributes = []
        for attribute in rdn:
            value = attribute.value
            # A '#'-hex value arrives as its DER: a string type tag and a short length before the characters.
            if isinstance(value, str) and len(value) >= 2 and ord(value[0]) < 0x20 and ord(value[1]) == len(value) - 2:
                value = value[2:]
            attributes.append(x509.NameAttribute(attribute.oid, value))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def _none_registered(_issuer: x509.Name, _serial: int) -> None:
    return None


def verify_envelope(root: etree._Element, registered: CertificateLookup = _none_registered) -> VerifiedSignature:
    """Verify the transport signature of a parsed envelope; raise MESSAGE_NOT_SIGNED or
    TRANSPORT_SIGNATURE_INVALID. ``registered`` finds certificates a signature names by issuer and serial."""
    signature = find_signature(root)
    if signature is None:
        raise GatewayError(ErrorCode.MESSAGE_NOT_SIGNED)
    signed = _check_shape(root, signature)
    certificate = _signer_certificate(signature, registered)
    value = _base64_value(signature.findtext(f"{{{DS}}}SignatureValue"), "SignatureValue")
    try:
        public_key = public_key_of(certificate)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    # The signature over the small SignedInfo first: a forged one costs no digest of the whole Body, which for GOST
    # is pure-Python hashing of up to the body limit.
    if not signed.algorithm.verify(public_key, value, canonical(signed.signed_info, signed.signed_info_prefixes)):
        raise _invalid("the signature does not verify: the message was changed or signed with another key")
    if not digest_matches(canonical(signed.body, signed.body_prefixes), signed.digest_method, signed.digest_value):
        raise _invalid("the Body's digest does not match: the message was changed after it was signed")
    return VerifiedSignature(certificate, value)


class EnvelopeSigner:
    """The gateway's own signing key and certificate (Layout A), parsed once: loading a private key costs more
    than signing with it."""

    def __init__(self, private_key: SigningKey, certificate: x509.Certificate) -> None:
        self.private_key = private_key
        self.certificate = certificate
        self.cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        self._signature = _signature_template(private_key, certificate)

    @property
    def is_gost(self) -> bool:
        """Whether this key signs with GOST 34.310 (else RSA or ECDSA)."""
        return isinstance(self.private_key, (GostPrivateKey, Gost2015PrivateKey))

    def sign(self, root: etree._Element) -> bytes:
        """Sign ``root``'s Body and serialise the envelope."""
        self.sign_in_place(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def sign_in_place(self, root: etree._Element) -> None:
        """Sign ``root``'s Body, adding the signature to its Security header."""
        _sign(root, self.private_key, copy.deepcopy(self._signature))

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes) -> EnvelopeSigner:
        """From an unencrypted PEM private key (RSA, ECDSA or GOST PKCS#8) and its PEM certificate."""
        return cls(load_signing_key(key_pem, None), x509.load_pem_x509_certificate(cert_pem))

    @classmethod
    def load(cls, key_path: Path, cert_path: Path | None, password: str | None) -> EnvelopeSigner:
        """From a PKCS#12 file (``.p12``/``.pfx``; NCA's GOST ones included) or a PEM key with its PEM
        certificate."""
        data = key_path.read_bytes()
        if key_path.suffix.lower() in (".p12", ".pfx"):
            key, certificate = load_pkcs12(data, password)
        else:
            if cert_path is None:
                raise ValueError("a PEM signing key needs its certificate (GATEWAY_SIGNING_CERT)")
            key = load_signing_key(data, password)
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return cls(key, certificate)


def sign_envelope(root: etree._Element, key_pem: bytes, cert_pem: bytes) -> etree._Element:
    """Sign the Body of ``root`` in place, Layout A (as the NIT reference client does), with RSA-SHA256,
    ECDSA-SHA256 or GOST 34.310 by the kind of key, and return ``root``."""
    EnvelopeSigner.from_pem(key_pem, cert_pem).sign_in_place(root)
    return root


def _signature_template(key: SigningKey, certificate: x509.Certificate) -> etree._Element:
    """A ds:Signature to fill in (Reference URI, DigestValue, SignatureValue): a signer copies one built once,
    about six times cheaper than building it element by element for every message."""
    method, digest_method = signing_methods(key)
    signature = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS, "wsse": WSSE})
    signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    etree.SubElement(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", Algorithm=method)
    reference = etree.SubElement(signed_info, f"{{{DS}}}Reference")
    etree.SubElement(etree.SubElement(reference, f"{{{DS}}}Transforms"), f"{{{DS}}}Transform", Algorithm=EXC_C14N)
    etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm=digest_method)
    etree.SubElement(reference, f"{{{DS}}}DigestValue")
    etree.SubElement(signature, f"{{{DS}}}SignatureValue")
    token = etree.SubElement(etree.SubElement(signature, f"{{{DS}}}KeyInfo"), f"{{{WSSE}}}SecurityTokenReference")
    identifier = etree.SubElement(token, f"{{{WSSE}}}KeyIdentifier", EncodingType=BASE64, ValueType=X509V3)
    identifier.text = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    return signature


def _sign(root: etree._Element, key: SigningKey, signature: etree._Element) -> None:
    """Sign ``root``'s Body with ``key``, filling in and placing ``signature`` (a fresh copy of a template)."""
    body = root.find(f"{{{SOAP_ENV}}}Body")
    body_id = f"id-{uuid.uuid4()}"
    body.set(f"{{{WSU}}}Id", body_id)
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is None:
        header = etree.Element(f"{{{SOAP_ENV}}}Header")
        root.insert(0, header)
    security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    security.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    security.append(signature)
    signed_info, value = signature[0], signature[1]
    reference = signed_info[2]
    reference.set("URI", f"#{body_id}")
    reference[2].text = base64.b64encode(digest(canonical(body, []), reference[1].get("Algorithm"))).decode()
    algorithm = SIGNATURE_ALGORITHMS[signed_info[1].get("Algorithm")]
    value.text = base64.b64encode(algorithm.sign(key, canonical(signed_info, []))).decode()
