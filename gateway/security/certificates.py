"""Certificates of transport signatures: whose organisation they belong to, and whether they are current.

Kazakh national CA certificates carry the organisation's BIN in the subject's organizational unit (OU) as
``BIN`` followed by 12 digits (shep-wire.md §3.7); an individual's certificate has an IIN in SERIALNUMBER and no
BIN, so it can never vouch for an organisation.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.errors import ErrorCode, GatewayError

_BIN = re.compile(r"^BIN(\d{12})$")
_IIN = re.compile(r"^IIN(\d{12})$")


def organisation_bin(certificate: x509.Certificate) -> str | None:
    """The BIN in the subject's OU, or None."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        match = _BIN.match(str(attribute.value).strip())
        if match:
            return match.group(1)
    return None


def holder_iin(certificate: x509.Certificate) -> str | None:
    """The holder's IIN in the subject's SERIALNUMBER, or None."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        match = _IIN.match(str(attribute.value).strip())
        if match:
            return match.group(1)
    return None


def check_signer(certificate: x509.Certificate, sender_bin: str, now: datetime | None = None) -> None:
    """The certificate must be current and belong to the sender's organisation."""
    now = now or datetime.now(UTC)
    if not (certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc):
        raise GatewayError(
            ErrorCode.CERTIFICATE_NOT_CURRENT,
            f"valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}",
        )
    found = organisation_bin(certificate)
    if found != sender_bin:
        raise GatewayError(
            ErrorCode.CERTIFICATE_NOT_OF_SENDER,
            f"the certificate carries BIN {found}" if found else "the certificate carries no BIN",
        )
