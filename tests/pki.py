"""Test keys and certificates, shaped like the Kazakh national CA's (BIN in OU, IIN in SERIALNUMBER)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def participant(bin_: str | None, days: int = 365, ecdsa: bool = False, not_before_days: int = -1) -> tuple[bytes, bytes]:
    """A self-issued participant key and certificate; the organisation's BIN in OU as the national CA puts it."""
    key = ec.generate_private_key(ec.SECP256R1()) if ecdsa else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "Test participant"), x509.NameAttribute(NameOID.SERIAL_NUMBER, "IIN931002451325")]
    if bin_:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{bin_}"))
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=not_before_days)).not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
    )
