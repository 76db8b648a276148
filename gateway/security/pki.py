"""A test PKI shaped like the Kazakh national CA's: a CA, participant certificates with the organisation's BIN in
OU and the holder's IIN in SERIALNUMBER, and CRLs. Used by ``gateway keys`` and by the tests; never by the
message path."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    """A private key (PEM, unencrypted) and its certificate (PEM)."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> CertificateIssuerPrivateKeyTypes:
        return serialization.load_pem_private_key(self.key_pem, None)  # type: ignore[return-value]


def _new_key(ecdsa: bool) -> CertificateIssuerPrivateKeyTypes:
    return ec.generate_private_key(ec.SECP256R1()) if ecdsa else rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _issued(key: CertificateIssuerPrivateKeyTypes, certificate: x509.Certificate) -> Issued:
    return Issued(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


def create_ca(common_name: str = "Test national CA (RSA TEST)", days: int = 3650) -> Issued:
    """A self-signed certification authority."""
    key = _new_key(ecdsa=False)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return _issued(key, certificate)


def participant_name(common_name: str, iin: str, bin_: str | None) -> x509.Name:
    """A subject as NCA writes it: CN, SERIALNUMBER=IIN…, C=KZ, and for an organisation's key OU=BIN…."""
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{iin}"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
    ]
    if bin_ is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BIN{bin_}"))
    return x509.Name(attributes)


def issue_participant(
    ca: Issued,
    bin_: str | None,
    common_name: str = "Test participant",
    iin: str = "931002451325",
    ecdsa: bool = False,
    valid_from_days: int = -1,
    valid_days: int = 365,
) -> Issued:
    """A signing certificate for an organisation (``bin_``) or an individual (None), issued by ``ca``."""
    key = _new_key(ecdsa)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(participant_name(common_name, iin, bin_)).issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=valid_from_days)).not_valid_after(now + timedelta(days=valid_from_days + valid_days))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return _issued(key, certificate)


def create_crl(ca: Issued, revoked_serials: list[int], next_update_days: int = 7) -> bytes:
    """A CRL (PEM) of ``ca`` listing ``revoked_serials``."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
        .last_update(now - timedelta(minutes=1)).next_update(now + timedelta(days=next_update_days))
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(minutes=1)).build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
