"""Whether a signer's certificate is trusted: its chain to a configured CA of its algorithm family, and its
revocation status by CRL, OCSP or both (``GATEWAY_REVOCATION_POLICY``).

NCA publishes separate GOST and RSA hierarchies, so trust anchors are configured per family: a certificate signed
with GOST must chain to a GOST anchor, one signed with RSA or ECDSA to an RSA anchor. Any configured certificate is
an anchor (NCA's issuing CAs are not self-signed, and their roots are not always at hand). Revocation failures
are fail-closed unless the service asks for fail-open (``revocationFailOpen`` in the registry).
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from gateway.errors import ErrorCode, GatewayError
from gateway.security.crls import CrlStore
from gateway.security.ocsp import CertificateStatus, OcspClient, OcspUnavailable
from gateway.security.public_keys import GOST_SIGNATURES, issued_by

log = logging.getLogger(__name__)
CHAIN_CACHE_SIZE = 10_000
CRL_GRACE = timedelta(minutes=5)  # clock skew between the CA and the gateway


class Family(enum.StrEnum):
    """The algorithm families NCA keeps separate hierarchies for."""

    GOST = "gost"
    RSA = "rsa"  # RSA and ECDSA


class RevocationPolicy(enum.StrEnum):
    """How revocation is checked (``GATEWAY_REVOCATION_POLICY``)."""

    CRL = "crl"
    OCSP = "ocsp"
    BOTH = "both"


def family_of(certificate: x509.Certificate) -> Family:
    """The family of the algorithm ``certificate`` was signed with (which anchors may have issued it)."""
    return Family.GOST if certificate.signature_algorithm_oid.dotted_string in GOST_SIGNATURES else Family.RSA


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Certificates from a PEM bundle or a single DER file (NCA publishes its CAs as DER ``.crt``/``.cer``)."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


@dataclass(frozen=True)
class RevocationStatus:
    """What the revocation check found, for the offline verifier and the logs."""

    revoked: bool
    source: str  # "CRL", "OCSP", or both joined
    revoked_at: datetime | None = None


def _not_current(reason: str) -> GatewayError:
    return GatewayError(ErrorCode.CERTIFICATE_NOT_CURRENT, reason)


class TrustStore:
    """Trusted CAs by family, their CRLs, and an OCSP client, applied by the revocation policy."""

    def __init__(
        self,
        authorities: dict[Family, list[x509.Certificate]],
        crls: CrlStore,
        policy: RevocationPolicy = RevocationPolicy.CRL,
        ocsp: OcspClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if policy is not RevocationPolicy.CRL and ocsp is None:
            raise ValueError(f"revocation policy {policy} needs an OCSP client")
        self._authorities = authorities
        self.crls = crls
        self.policy = policy
        self.ocsp = ocsp
        self._clock = clock  # the gateway's clock; tests of NCA's expired material stop it inside their validity
        # A signer's certificate, once its key usage and chain checked out -> its chain (issuer first). Keyed by the
        # certificate itself: its hash and equality are those of its DER, cheaper than a SHA-256 fingerprint.
        self._chains: dict[x509.Certificate, list[x509.Certificate]] = {}

    def check(self, certificate: x509.Certificate, fail_open: bool = False) -> None:
        """Raise CERTIFICATE_NOT_TRUSTED or CERTIFICATE_NOT_CURRENT (revoked, or status unknown) unless
        ``certificate`` is good now; with ``fail_open``, an unknowable status is logged and let through."""
        issuer = self.chain(certificate)[0]
        try:
            status = self.revocation(certificate, issuer)
        except GatewayError as exc:
            if not fail_open or exc.error is not ErrorCode.CERTIFICATE_NOT_CURRENT:
                raise
            log.warning("revocation status of certificate %x unknown (%s): let through, the service is fail-open",
                        certificate.serial_number, exc.data)
            return
        if status.revoked:
            at = f" on {status.revoked_at:%Y-%m-%d %H:%M:%S}Z" if status.revoked_at else ""
            raise _not_current(f"certificate {certificate.serial_number:x} is revoked{at} ({status.source})")

    def answers_from_memory(self) -> bool:
        """Whether :meth:`check` answers now without any I/O: CRLs only, and none due for a refresh."""
        return self.policy is RevocationPolicy.CRL and not self.crls.due()

    def chain(self, certificate: x509.Certificate, at: datetime | None = None) -> list[x509.Certificate]:
        """The certificates above ``certificate`` up to a trusted anchor, its issuer first, each current at ``at``
        (now by default); remembered once checked for the current time."""
        if at is None and (known := self._chains.get(certificate)) is not None and _current(known, self._clock()):
            return known
        usage = _key_usage(certificate)
        if usage is not None and not usage.digital_signature and not usage.content_commitment:
            raise GatewayError(ErrorCode.CERTIFICATE_NOT_TRUSTED, "the certificate is not for digital signatures")
        anchors = self._authorities.get(family_of(certificate), [])
        issuer = next((anchor for anchor in anchors if issued_by(certificate, anchor)), None)
        if issuer is None:
            raise GatewayError(
                ErrorCode.CERTIFICATE_NOT_TRUSTED,
                f"issuer {certificate.issuer.rfc4514_string()[:200]} is not a trusted {family_of(certificate)} CA",
            )
        chain = [issuer]
        if not _current(chain, at or self._clock()):
            raise GatewayError(ErrorCode.CERTIFICATE_NOT_TRUSTED, f"the issuing CA is not valid at {at or 'this time'}")
        if at is None:
            if len(self._chains) >= CHAIN_CACHE_SIZE:
                self._chains.clear()
            self._chains[certificate] = chain
        return chain

    def revocation(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        """``certificate``'s status by the policy; CERTIFICATE_NOT_CURRENT when it cannot be known. Every source
        the policy names is asked, so that one source's "revoked" wins over another's "unknown" (which a fail-open
        service would let through)."""
        sources = []
        if self.policy in (RevocationPolicy.CRL, RevocationPolicy.BOTH):
            sources.append(self._by_crl)
        if self.policy in (RevocationPolicy.OCSP, RevocationPolicy.BOTH):
            sources.append(self._by_ocsp)
        found: list[RevocationStatus] = []
        unknown: GatewayError | None = None
        for source in sources:
            try:
                found.append(source(certificate, issuer))
            except GatewayError as exc:
                unknown = unknown or exc
        revoked = next((status for status in found if status.revoked), None)
        if revoked is not None:
            return revoked
        if unknown is not None:
            raise unknown
        return RevocationStatus(False, " and ".join(status.source for status in found))

    def _by_crl(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        crl = self.crls.crl_of(issuer)
        if crl is None:
            raise _not_current("revocation status unknown: no CRL of the issuer")
        now = self._clock()
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None and entry.revocation_date_utc <= now:
            return RevocationStatus(True, "CRL", entry.revocation_date_utc)
        if crl.next_update_utc is not None and crl.next_update_utc + CRL_GRACE < now:
            # Refreshes failed for a while: the last good copy no longer says "not revoked".
            raise _not_current(f"revocation status unknown: the issuer's CRL is past its nextUpdate ({crl.next_update_utc:%Y-%m-%d %H:%M}Z)")
        return RevocationStatus(False, "CRL")

    def _by_ocsp(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        assert self.ocsp is not None  # the constructor refuses an OCSP policy without a client
        try:
            verdict = self.ocsp.status(certificate, issuer)
        except OcspUnavailable as exc:
            raise _not_current(f"revocation status unknown: OCSP {exc}") from exc
        if verdict.status is CertificateStatus.UNKNOWN:
            raise _not_current("revocation status unknown: the OCSP responder does not know the certificate")
        return RevocationStatus(verdict.status is CertificateStatus.REVOKED, "OCSP", verdict.revoked_at)

    def crl_freshness(self) -> dict[str, datetime | None]:
        """Each CRL source and its ``nextUpdate`` (None when it never loaded), for health reports."""
        return self.crls.freshness()


def _current(chain: list[x509.Certificate], at: datetime) -> bool:
    return all(ca.not_valid_before_utc <= at <= ca.not_valid_after_utc for ca in chain)


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
