"""Security mode 3: the Body's content encrypted with XML Encryption, the WS-Security way (gateway-rules.md §3.3
scenario 3, §7 Q7).

A sender encrypts the Body's content with a fresh AES key (``xenc:EncryptedData`` of Type Content in the Body)
and transports that key to the gateway's certificate with RSA-OAEP (``xenc:EncryptedKey`` in
``wsse:Security``, or inside the EncryptedData's KeyInfo as plain XML Encryption does). The gateway processes
the Security header in document order, as WS-Security processors do: WSS4J prepends each action's header, so
when the Signature comes before the EncryptedKey the sender encrypted first and signed the ciphertext, and the
signature is checked over the envelope as it arrived; otherwise it signed first and the signature is checked
over the decrypted Body.

Outbound, the gateway signs first and then encrypts the Body's content to the recipient's RSA certificate
(WSS4J's default ``Signature Encrypt`` order): AES-256-GCM for the data, RSA-OAEP (MGF1-SHA1) for the key, the
certificate named by issuer and serial. RSA-1_5 key transport is refused (Bleichenbacher).
"""
from __future__ import annotations

import base64
import copy
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from gateway.errors import ErrorCode, GatewayError
from gateway.security.public_keys import public_key_of
from gateway.security.wssec import EnvelopeSigner
from gateway.soap.envelope import Envelope, Signer, parse_envelope
from gateway.soap.namespaces import SOAP_ENV, WSSE

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
RSA_OAEP_MGF1P = f"{XENC}rsa-oaep-mgf1p"
RSA_OAEP = f"{XENC11}rsa-oaep"
AES256_GCM = f"{XENC11}aes256-gcm"
CONTENT = f"{XENC}Content"
# Data encryption algorithms accepted from senders (xmlsec does the work).
DATA_ALGORITHMS = {
    f"{XENC}aes128-cbc",
    f"{XENC}aes192-cbc",
    f"{XENC}aes256-cbc",
    f"{XENC11}aes128-gcm",
    f"{XENC11}aes192-gcm",
    AES256_GCM,
}
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_MGFS = {
    f"{XENC11}mgf1sha1": hashes.SHA1,
    f"{XENC11}mgf1sha256": hashes.SHA256,
    f"{XENC11}mgf1sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class OpenedEnvelope:
    """A received envelope after decryption: ``envelope`` to read, ``signed_root`` to check the signature
    over, and whether the Body came encrypted."""

    envelope: Envelope
    signed_root: etree._Element
    encrypted: bool


def _refused(reason: str) -> GatewayError:
    return GatewayError(ErrorCode.DECRYPTION_FAILED, reason)


def open_envelope(envelope: Envelope, keys: Sequence[rsa.RSAPrivateKey]) -> OpenedEnvelope:
    """Decrypt an envelope whose Body content is encrypted to one of ``keys`` (the gateway's current and, during
    a rotation, previous key); an unencrypted envelope is returned as it is."""
    encrypted_data = envelope.payload
    if encrypted_data.tag != f"{{{XENC}}}EncryptedData":
        return OpenedEnvelope(envelope, envelope.root, encrypted=False)
    if encrypted_data.get("Type") != CONTENT:
        raise _refused("only the Body's content may be encrypted (EncryptedData Type Content)")
    method = encrypted_data.find(f"{{{XENC}}}EncryptionMethod")
    if method is None or method.get("Algorithm") not in DATA_ALGORITHMS:
        raise _refused("the data encryption algorithm is not supported (AES-CBC or AES-GCM)")
    encrypted_key, position = _encrypted_key_for(envelope, encrypted_data)
    session_key = _unwrap_key(encrypted_key, keys)
    signature_first = position is not None and _signature_precedes(envelope, position)
    signed_root = copy.deepcopy(envelope.root) if signature_first else None
    key_info = encrypted_data.find(f"{{{DS}}}KeyInfo")
    if key_info is not None:
        encrypted_data.remove(key_info)  # the key is already unwrapped; xmlsec must not try to resolve it again
    context = xmlsec.EncryptionContext()
    try:
        context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session_key)
        context.decrypt(encrypted_data)
    except xmlsec.Error as exc:
        raise _refused("the Body cannot be decrypted with the transported key") from exc
    # xmlsec builds the decrypted nodes outside lxml's bookkeeping: reparse before reading them.
    opened = parse_envelope(etree.tostring(envelope.root))
    return OpenedEnvelope(opened, signed_root if signed_root is not None else opened.root, encrypted=True)


def _encrypted_key_for(envelope: Envelope, encrypted_data: etree._Element) -> tuple[etree._Element, int | None]:
    """The EncryptedKey of this EncryptedData and its position in the Security header (None when it sits in
    the EncryptedData's own KeyInfo)."""
    inline = encrypted_data.find(f"{{{DS}}}KeyInfo/{{{XENC}}}EncryptedKey")
    if inline is not None:
        return inline, None
    security = envelope.header.find(f"{{{WSSE}}}Security") if envelope.header is not None else None
    if security is None:
        raise _refused("the Body is encrypted but no EncryptedKey is present")
    data_id = encrypted_data.get("Id")
    candidates = []
    for position, child in enumerate(security.iterchildren(tag=etree.Element)):
        if child.tag != f"{{{XENC}}}EncryptedKey":
            continue
        references = [r.get("URI") for r in child.iterfind(f"{{{XENC}}}ReferenceList/{{{XENC}}}DataReference")]
        if not references or (data_id is not None and f"#{data_id}" in references):
            candidates.append((child, position))
    if len(candidates) != 1:
        raise _refused(f"{len(candidates)} EncryptedKey elements refer to the Body's EncryptedData")
    return candidates[0]


def _signature_precedes(envelope: Envelope, key_position: int) -> bool:
    security = envelope.header.find(f"{{{WSSE}}}Security")
    for position, child in enumerate(security.iterchildren(tag=etree.Element)):
        if child.tag == f"{{{DS}}}Signature":
            return position < key_position
    return False


def _unwrap_key(encrypted_key: etree._Element, keys: Sequence[rsa.RSAPrivateKey]) -> bytes:
    method = encrypted_key.find(f"{{{XENC}}}EncryptionMethod")
    algorithm = method.get("Algorithm") if method is not None else None
    if algorithm not in (RSA_OAEP_MGF1P, RSA_OAEP):
        raise _refused(f"key transport {algorithm} is not accepted (RSA-OAEP only)")
    digest_method = method.find(f"{{{DS}}}DigestMethod")
    digest = _DIGESTS.get(digest_method.get("Algorithm") if digest_method is not None else f"{DS}sha1")
    mgf_method = method.find(f"{{{XENC11}}}MGF")
    mgf = _MGFS.get(mgf_method.get("Algorithm")) if mgf_method is not None else hashes.SHA1
    if digest is None or mgf is None:
        raise _refused("the RSA-OAEP digest or mask generation function is not supported")
    oaep = padding.OAEP(mgf=padding.MGF1(mgf()), algorithm=digest(), label=None)
    try:
        wrapped = base64.b64decode("".join((encrypted_key.findtext(f"{{{XENC}}}CipherData/{{{XENC}}}CipherValue") or "").split()))
    except ValueError as exc:
        raise _refused("the EncryptedKey's CipherValue is not base64") from exc
    for key in keys:
        try:
            return key.decrypt(wrapped, oaep)
        except ValueError:
            continue
    raise _refused("the key is not encrypted to a certificate of the gateway")


def encrypt_envelope(root: etree._Element, recipient: x509.Certificate) -> None:
    """Encrypt ``root``'s Body content in place to ``recipient`` (an RSA certificate), after any signature."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise GatewayError(ErrorCode.INTERNAL_ERROR, "messages can only be encrypted to RSA certificates")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    session_key = os.urandom(32)
    data_id = f"ED-{uuid.uuid4()}"
    template = xmlsec.template.encrypted_data_create(
        root, xmlsec.constants.TransformAes256Gcm, type=xmlsec.constants.TypeEncContent, ns="xenc"
    )
    template.set("Id", data_id)
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    context = xmlsec.EncryptionContext()
    context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session_key)
    context.encrypt_xml(template, body)
    _add_encrypted_key(root, recipient, public_key.encrypt(
        session_key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    ), data_id)


def _add_encrypted_key(root: etree._Element, recipient: x509.Certificate, wrapped: bytes, data_id: str) -> None:
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is None:
        header = etree.Element(f"{{{SOAP_ENV}}}Header")
        root.insert(0, header)
    security = header.find(f"{{{WSSE}}}Security")
    if security is None:
        security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
        security.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    encrypted_key = etree.Element(f"{{{XENC}}}EncryptedKey", nsmap={"xenc": XENC, "ds": DS}, Id=f"EK-{uuid.uuid4()}")
    etree.SubElement(encrypted_key, f"{{{XENC}}}EncryptionMethod", Algorithm=RSA_OAEP_MGF1P)
    key_info = etree.SubElement(encrypted_key, f"{{{DS}}}KeyInfo")
    token = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference")
    issuer_serial = etree.SubElement(etree.SubElement(token, f"{{{DS}}}X509Data"), f"{{{DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = recipient.issuer.rfc4514_string()
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = str(recipient.serial_number)
    cipher = etree.SubElement(etree.SubElement(encrypted_key, f"{{{XENC}}}CipherData"), f"{{{XENC}}}CipherValue")
    cipher.text = base64.b64encode(wrapped).decode()
    etree.SubElement(etree.SubElement(encrypted_key, f"{{{XENC}}}ReferenceList"), f"{{{XENC}}}DataReference", URI=f"#{data_id}")
    # Prepended: the last action applied comes first, so a receiver decrypts before it verifies.
    security.insert(0, encrypted_key)


@dataclass(frozen=True)
class SignAndEncrypt:
    """A :class:`~gateway.soap.envelope.Signer` for security mode 3: signs the Body with the gateway's key, then
    encrypts it to the recipient's certificate."""

    signer: EnvelopeSigner
    recipient: x509.Certificate

    def sign(self, root: etree._Element) -> bytes:
        self.signer.sign_in_place(root)
        encrypt_envelope(root, self.recipient)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def protect(signer: EnvelopeSigner | None, recipient: x509.Certificate | None) -> Signer | None:
    """What to apply to an outgoing envelope: nothing, the gateway's signature, or signature and encryption."""
    if signer is None or recipient is None:
        return signer
    return SignAndEncrypt(signer, recipient)


def can_encrypt_to(certificate: x509.Certificate) -> bool:
    """Key transport is RSA-OAEP: only RSA certificates can receive encrypted messages (a GOST one, whose key
    ``cryptography`` cannot even read, never)."""
    try:
        return isinstance(public_key_of(certificate), rsa.RSAPublicKey)
    except ValueError:
        return False
