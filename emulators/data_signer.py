"""Business-data signatures as ShEP providers make them (shep-wire.md §3.5): enveloped XMLDSig over the payload
root, inclusive c14n, ``Reference URI=""``, enveloped + c14n-with-comments transforms, certificate inline."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

INCLUSIVE_C14N = CanonicalizationMethod.CANONICAL_XML_1_0


@dataclass(frozen=True)
class DataSigner:
    """An RSA key and its certificate, signing payload documents."""

    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def self_signed(cls, common_name: str = "Provider emulator") -> DataSigner:
        """A fresh RSA-2048 key with a self-signed certificate (for emulators and tests)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        return cls(
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        )

    def sign(self, payload: etree._Element) -> etree._Element:
        """Return ``payload`` signed in place-style: a copy with an enveloped ds:Signature as its last child."""
        signer = XMLSigner(
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=INCLUSIVE_C14N,
        )
        return signer.sign(payload, key=self.key_pem, cert=self.cert_pem)

    def verify(self, signed: etree._Element) -> etree._Element:
        """Verify a payload signed by this signer; returns what the signature covers, raises if it is broken."""
        return XMLVerifier().verify(signed, x509_cert=self.cert_pem).signed_xml
