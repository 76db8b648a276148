"""Certificates of transport signatures: whose organisation they belong to, and whether they are current.

Kazakh national CA certificates carry the organisation's BIN in the subject's organizational unit (OU) as
``BIN`` followed by 12 digits (shep-wire.md §3.7); an individual's certificate has an IIN in SERIALNUMBER and no
BIN, so it can never vouch for an organisation.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import urllib3
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from gateway.errors import ErrorCode, GatewayError

log = logging.getLogger(__name__)
CHAIN_CACHE_SIZE = 10_000

_BIN = re.compile(r"^BIN(\d{12})$")


def organisation_bin(certificate: x509.Certificate) -> str | None:
    """The BIN in the subject's OU, or None."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        match = _BIN.match(str(attribute.value).strip())
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


class TrustStore:
    """Trusted certification authorities and their revocation lists.

    A signer's certificate must chain (signature by signature, at most ``MAX_CHAIN`` links) to one of the trusted
    CA certificates, and must not be listed in its issuer's CRL. CRLs come from files or http(s) URLs, are kept
    in memory and fetched again once older than ``refresh_seconds`` (a failed refresh keeps the last good copy);
    a certificate whose issuer has no CRL at all is refused, since its status cannot be known.
    """

    MAX_CHAIN = 5

    def __init__(self, authorities: list[x509.Certificate], crl_sources: list[str], refresh_seconds: float) -> None:
        self._authorities = authorities
        self._sources = crl_sources
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._crls: dict[str, x509.CertificateRevocationList] = {}  # by source, signature checked at load
        self._crl_of_authority: dict[x509.Certificate, x509.CertificateRevocationList] = {}
        # None until the first load: a monotonic clock may start near zero on a freshly booted machine.
        self._loaded_at: float | None = None
        # A signer's certificate, once its key usage and chain checked out -> its trusted issuer. Keyed by the
        # certificate itself: its hash and equality are those of its DER, cheaper than a SHA-256 fingerprint.
        self._issuers: dict[x509.Certificate, x509.Certificate] = {}
        self._http = urllib3.PoolManager(retries=False, timeout=10.0)

    @classmethod
    def from_files(cls, ca_file: Path, crl_sources: list[str], refresh_seconds: float) -> TrustStore:
        return cls(x509.load_pem_x509_certificates(ca_file.read_bytes()), crl_sources, refresh_seconds)

    def check(self, certificate: x509.Certificate) -> None:
        """Raise CERTIFICATE_NOT_TRUSTED or CERTIFICATE_NOT_CURRENT (revoked) unless ``certificate`` is good."""
        issuer = self._trusted_issuer(certificate)
        crl = self._crl_of(issuer)
        if crl is None:
            raise GatewayError(ErrorCode.CERTIFICATE_NOT_CURRENT, "revocation status unknown: no CRL of the issuer")
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            raise GatewayError(ErrorCode.CERTIFICATE_NOT_CURRENT, f"certificate {certificate.serial_number:x} is revoked")

    def _trusted_issuer(self, certificate: x509.Certificate) -> x509.Certificate:
        """The trusted certificate that issued ``certificate`` (directly or through trusted intermediates), once its
        key usage allows signing; remembered once checked (neither can change; revocation is checked every time)."""
        known = self._issuers.get(certificate)
        if known is not None:
            return known
        usage = _key_usage(certificate)
        if usage is not None and not usage.digital_signature:
            raise GatewayError(ErrorCode.CERTIFICATE_NOT_TRUSTED, "the certificate is not for digital signatures")
        issuer = self._walk_chain(certificate)
        if len(self._issuers) >= CHAIN_CACHE_SIZE:
            self._issuers.clear()
        self._issuers[certificate] = issuer
        return issuer

    def _walk_chain(self, certificate: x509.Certificate) -> x509.Certificate:
        current, direct_issuer = certificate, None
        for _ in range(self.MAX_CHAIN):
            issuer = next((ca for ca in self._authorities if ca.subject == current.issuer and _issued_by(current, ca)), None)
            if issuer is None:
                raise GatewayError(ErrorCode.CERTIFICATE_NOT_TRUSTED, f"issuer {current.issuer.rfc4514_string()[:200]} is not trusted")
            direct_issuer = direct_issuer or issuer
            if issuer.subject == issuer.issuer:
                return direct_issuer
            current = issuer
        raise GatewayError(ErrorCode.CERTIFICATE_NOT_TRUSTED, "the certificate chain is too long")

    def _crl_of(self, issuer: x509.Certificate) -> x509.CertificateRevocationList | None:
        if self._stale():
            with self._lock:
                if self._stale():
                    self._reload()
        return self._crl_of_authority.get(issuer)

    def _stale(self) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self._refresh

    def _reload(self) -> None:
        for source in self._sources:
            try:
                data = self._fetch(source)
                crl = x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----") else x509.load_pem_x509_crl(data)
                issuer = next((ca for ca in self._authorities if ca.subject == crl.issuer), None)
                if issuer is None or not crl.is_signature_valid(issuer.public_key()):
                    raise ValueError("the CRL is not signed by a trusted CA")
                self._crls[source] = crl
            except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                log.warning("CRL %s could not be refreshed (%s); keeping the last good copy", source, exc.__class__.__name__)
        crl_of_authority: dict[x509.Certificate, x509.CertificateRevocationList] = {}
        for crl in self._crls.values():  # in the order the sources are configured: the first one of an issuer counts
            for authority in self._authorities:
                if crl.issuer == authority.subject:
                    crl_of_authority.setdefault(authority, crl)
        self._crl_of_authority = crl_of_authority
        self._loaded_at = time.monotonic()

    def _fetch(self, source: str) -> bytes:
        if source.startswith(("http://", "https://")):
            response = self._http.request("GET", source)
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
            return response.data
        return Path(source).read_bytes()

    def crl_freshness(self) -> dict[str, datetime | None]:
        """Each CRL source and its ``nextUpdate`` (None when it never loaded), for health reports."""
        return {source: (crl.next_update_utc if (crl := self._crls.get(source)) else None) for source in self._sources}


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
