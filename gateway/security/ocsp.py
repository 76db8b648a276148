"""OCSP (RFC 6960) for certificates of the Kazakh national CA: judging a response, and a caching client.

NCA's responder (``http://ocsp.pki.gov.kz``, named in every certificate's AIA) answers SHA-256 CertIDs, signs with
RSA or GOST (2004 or 2015) through a responder certificate the CA delegated (id-kp-OCSPSigning), echoes the
request's nonce and gives no nextUpdate. Certificates are read through asn1crypto where ``cryptography`` is too
strict for NCA's: it refuses GOST keys, and the extensions of NCA's responder certificates (an ocsp-nocheck
encoded as an empty OCTET STRING instead of NULL).
"""
from __future__ import annotations

import enum
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3
from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from gateway.security.public_keys import verify_signed_data
from journals.times import iso_utc

log = logging.getLogger(__name__)

# NCA's real responses answer SHA-256 CertIDs: what kalkan-based clients (NCANode) ask with.
CERT_ID_HASH = hashes.SHA256()
NONCE_BYTES = 32  # RFC 8954 §2.1
CLOCK_SKEW = timedelta(minutes=5)
MAX_RESPONSE_BYTES = 64 * 1024
MAX_CACHED = 10_000


class CertificateStatus(enum.Enum):
    """What a responder says of a certificate."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class OcspError(ValueError):
    """A response that cannot be relied on; the message says why."""


class OcspUnavailable(Exception):
    """No usable answer: no responder, responder unreachable, or a bad response (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OcspVerdict:
    """A judged response about one certificate; ``responder`` is the signer's subject (RFC 4514)."""

    status: CertificateStatus
    revoked_at: datetime | None
    this_update: datetime
    next_update: datetime | None
    produced_at: datetime
    responder: str
    revocation_reason: str | None = None  # RFC 5280 reason name, e.g. "key_compromise"


def _tbs(certificate: x509.Certificate) -> asn1_x509.TbsCertificate:
    # asn1crypto parses fields lazily: reading the subject or the extensions never touches a GOST key's parameters.
    return asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)


def _public_key_bits(certificate: x509.Certificate) -> bytes:
    """The contents of the SubjectPublicKeyInfo's BIT STRING, without the unused-bits octet (what CertIDs hash)."""
    spki = core.Sequence.load(_tbs(certificate)["subject_public_key_info"].dump())
    return bytes(spki[1].contents[1:])


def _extension(certificate: x509.Certificate, name: str) -> Any:
    """The parsed value of extension ``name`` (asn1crypto's name), or None when absent."""
    extensions = _tbs(certificate)["extensions"]
    # Only the wanted extension is parsed: NCA's responder certificates carry one asn1crypto cannot parse either.
    for extension in [] if isinstance(extensions, core.Void) else extensions:
        if extension["extn_id"].native == name:
            return extension["extn_value"].parsed.native
    return None


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def cert_id_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm = CERT_ID_HASH) -> tuple[bytes, bytes]:
    """The CertID's issuerNameHash and issuerKeyHash for certificates issued by ``issuer`` (any key algorithm)."""
    return _digest(algorithm, _tbs(issuer)["subject"].dump()), _digest(algorithm, _public_key_bits(issuer))


def responder_url(certificate: x509.Certificate) -> str | None:
    """The first OCSP responder (AIA id-ad-ocsp) ``certificate`` names, or None."""
    for description in _extension(certificate, "authority_information_access") or []:
        location = description["access_location"]
        if description["access_method"] == "ocsp" and isinstance(location, str) and location.startswith(("http://", "https://")):
            return location
    return None


def build_request(certificate: x509.Certificate, issuer: x509.Certificate, nonce: bytes) -> bytes:
    """A DER OCSP request about ``certificate`` carrying ``nonce``. The CertID is built from hashes computed here,
    since cryptography's add_certificate needs the issuer's key, which it cannot load for GOST."""
    name_hash, key_hash = cert_id_hashes(issuer)
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, certificate.serial_number, CERT_ID_HASH)
    return builder.add_extension(x509.OCSPNonce(nonce), critical=False).build().public_bytes(serialization.Encoding.DER)


def judge_response(
    response_der: bytes,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    at: datetime,
    *,
    nonce: bytes | None = None,
    max_age: timedelta | None = None,
) -> OcspVerdict:
    """What the DER OCSP response says of ``certificate`` (issued by ``issuer``) as of ``at``.

    Raises OcspError when the response was not successful, is not signed by ``issuer`` or by a responder it
    delegated (OCSPSigning, valid at ``at``), is about another certificate, echoes a nonce other than ``nonce``,
    has a thisUpdate in the future or a nextUpdate in the past (beyond CLOCK_SKEW), or, lacking a nextUpdate, a
    thisUpdate older than ``max_age``.
    """
    if certificate.issuer != issuer.subject:
        raise OcspError("the issuer given is not the certificate's issuer")
    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError as exc:
        raise OcspError("not an OCSP response") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"the responder answered {response.response_status.name}")
    try:
        signer = _authorised_signer(response, issuer, at)
        _check_nonce(response, nonce)
        single = _single_response(response, certificate.serial_number, issuer)
        status = _STATUS[single.certificate_status]
        revoked_at = single.revocation_time_utc if status is CertificateStatus.REVOKED else None
        reason = single.revocation_reason.name if status is CertificateStatus.REVOKED and single.revocation_reason else None
        this_update, next_update = single.this_update_utc, single.next_update_utc
    except OcspError:
        raise
    except ValueError as exc:  # cryptography parses lazily: a malformed part shows only when read
        raise OcspError(f"malformed response ({exc})") from exc
    if this_update > at + CLOCK_SKEW:
        raise OcspError(f"the response's thisUpdate {this_update:%Y-%m-%dT%H:%M:%SZ} is in the future")
    if next_update is not None and next_update < at - CLOCK_SKEW:
        raise OcspError(f"the response's nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ} has passed")
    if next_update is None and max_age is not None and at - this_update > max_age:
        raise OcspError(f"the response's thisUpdate {this_update:%Y-%m-%dT%H:%M:%SZ} is older than {max_age}")
    return OcspVerdict(status, revoked_at, this_update, next_update, response.produced_at_utc,
                       signer.subject.rfc4514_string(), reason)


_STATUS = {
    ocsp.OCSPCertStatus.GOOD: CertificateStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: CertificateStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: CertificateStatus.UNKNOWN,
}


def _authorised_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime) -> x509.Certificate:
    """The certificate the ResponderID names whose key signed the response and who may answer for ``issuer``'s
    certificates (RFC 6960 §4.2.2.2): the issuer itself, or a responder it certified for OCSPSigning."""
    named = [candidate for candidate in [issuer, *response.certificates] if _is_responder(candidate, response)]
    if not named:
        raise OcspError("the response is signed by a responder it carries no certificate of")
    reasons = []
    for candidate in named:
        reason = _unauthorised(candidate, issuer, at) or _bad_signature(candidate, response)
        if reason is None:
            return candidate
        reasons.append(reason)
    raise OcspError(reasons[0])


def _is_responder(candidate: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return candidate.subject == response.responder_name
    return response.responder_key_hash == _digest(hashes.SHA1(), _public_key_bits(candidate))


def _unauthorised(candidate: x509.Certificate, issuer: x509.Certificate, at: datetime) -> str | None:
    """Why ``candidate`` may not answer for ``issuer``'s certificates, or None when it may."""
    if candidate == issuer:
        return None
    if candidate.issuer != issuer.subject or not verify_signed_data(
        issuer, candidate.signature_algorithm_oid.dotted_string, candidate.signature, candidate.tbs_certificate_bytes
    ):
        return "the responder's certificate was not issued by the certificate's CA"
    if "ocsp_signing" not in (_extension(candidate, "extended_key_usage") or []):
        return "the responder's certificate is not delegated for OCSP signing (no id-kp-OCSPSigning)"
    if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
        return f"the responder's certificate is not valid at {at:%Y-%m-%dT%H:%M:%SZ}"
    return None


def _bad_signature(signer: x509.Certificate, response: ocsp.OCSPResponse) -> str | None:
    algorithm = response.signature_algorithm_oid.dotted_string
    if verify_signed_data(signer, algorithm, response.signature, response.tbs_response_bytes):
        return None
    return f"the response's signature ({algorithm}) does not verify"


def _check_nonce(response: ocsp.OCSPResponse, nonce: bytes | None) -> None:
    # NCA echoes the nonce; a responder that does not is accepted, since freshness is also checked by time.
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return
    if nonce is not None and not secrets.compare_digest(echoed, nonce):
        raise OcspError("the response echoes another request's nonce")


def _single_response(response: ocsp.OCSPResponse, serial: int, issuer: x509.Certificate) -> ocsp.OCSPSingleResponse:
    """The SingleResponse whose CertID is ``serial`` of ``issuer`` (its name and key hashed as the CertID says)."""
    other_issuer = False
    for single in response.responses:
        if single.serial_number != serial:
            continue
        try:
            expected = cert_id_hashes(issuer, single.hash_algorithm)
        except UnsupportedAlgorithm as exc:
            raise OcspError("the response's CertID uses a hash algorithm not supported") from exc
        if (single.issuer_name_hash, single.issuer_key_hash) == expected:
            return single
        other_issuer = True
    raise OcspError(f"the response is about serial {serial:x} of another issuer" if other_issuer
                    else f"the response is not about serial {serial:x}")


@dataclass(frozen=True)
class _Cached:
    serial: int
    verdict: OcspVerdict
    expires_at: datetime


@dataclass(frozen=True)
class _Reachability:
    state: str  # "ok", "unreachable" or "bad_response"
    at: datetime
    error: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OcspClient:
    """Asks OCSP responders about certificates and keeps each judged answer until its nextUpdate, or for
    ``max_age_seconds`` when it has none (NCA's have none), never beyond nextUpdate. Thread-safe: two threads
    asking about the same certificate at once may both ask the responder, which is harmless."""

    def __init__(
        self,
        *,
        responder_override: str | None,
        timeout_seconds: float,
        max_age_seconds: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._override = responder_override
        self._max_age = timedelta(seconds=max_age_seconds)
        self._clock = clock
        self._http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=timeout_seconds))
        self._lock = threading.Lock()
        self._cache: dict[tuple[bytes, bytes, int], _Cached] = {}
        self._responders: dict[str, _Reachability] = {}

    def status(self, certificate: x509.Certificate, issuer: x509.Certificate) -> OcspVerdict:
        """The judged status of ``certificate`` (issued by ``issuer``), from the cache while it is fresh. Check
        the certificate's chain first: its AIA decides where the request goes.

        Raises OcspUnavailable when no responder is known or none answered usably (the caller decides whether
        that fails closed), OcspError when ``issuer`` is not the certificate's issuer."""
        if certificate.issuer != issuer.subject:
            raise OcspError("the issuer given is not the certificate's issuer")
        key = (*cert_id_hashes(issuer), certificate.serial_number)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and self._clock() < cached.expires_at:
            return cached.verdict
        url = self._override or responder_url(certificate)
        if url is None:
            raise OcspUnavailable("the certificate names no OCSP responder and none is configured")
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = self._post(url, build_request(certificate, issuer, nonce))
        now = self._clock()
        try:
            verdict = judge_response(body, certificate, issuer, now, nonce=nonce, max_age=self._max_age)
        except OcspError as exc:
            self._note(url, "bad_response", str(exc))
            raise OcspUnavailable(f"OCSP responder {url}: {exc}") from exc
        self._note(url, "ok", None)
        limit = verdict.next_update or verdict.this_update + self._max_age
        self._store(key, _Cached(certificate.serial_number, verdict, min(now + self._max_age, limit)))
        return verdict

    def report(self) -> dict[str, Any]:
        """For ``/health``: each responder's last outcome, and each cached answer and whether it is still fresh."""
        now = self._clock()
        with self._lock:
            responders, cached = dict(self._responders), list(self._cache.values())
        return {
            "responders": [
                {"url": url, "reachable": r.state != "unreachable", "state": r.state, "error": r.error, "at": iso_utc(r.at)}
                for url, r in sorted(responders.items())
            ],
            "responses": [
                {"serial": f"{c.serial:x}", "status": c.verdict.status.value, "this_update": iso_utc(c.verdict.this_update),
                 "next_update": iso_utc(c.verdict.next_update), "expires_at": iso_utc(c.expires_at), "fresh": now < c.expires_at}
                for c in cached
            ],
        }

    def _post(self, url: str, request: bytes) -> bytes:
        headers = {"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"}
        try:
            response = self._http.request("POST", url, body=request, headers=headers, preload_content=False, redirect=False)
            try:
                body = response.read(MAX_RESPONSE_BYTES + 1)
            except urllib3.exceptions.HTTPError:
                response.close()
                raise
        except urllib3.exceptions.HTTPError as exc:
            self._note(url, "unreachable", exc.__class__.__name__)
            raise OcspUnavailable(f"OCSP responder {url} unreachable ({exc.__class__.__name__})") from exc
        if len(body) > MAX_RESPONSE_BYTES:
            response.close()  # the rest is left unread, so the connection cannot go back to the pool
        else:
            response.release_conn()
        problem = (f"answered HTTP {response.status}" if response.status != 200
                   else f"answered more than {MAX_RESPONSE_BYTES} bytes" if len(body) > MAX_RESPONSE_BYTES else None)
        if problem is not None:
            self._note(url, "bad_response", problem)
            raise OcspUnavailable(f"OCSP responder {url} {problem}")
        return body

    def _note(self, url: str, state: str, error: str | None) -> None:
        if error is not None:
            log.warning("OCSP responder %s: %s", url, error)
        with self._lock:
            self._responders[url] = _Reachability(state, self._clock(), error)

    def _store(self, key: tuple[bytes, bytes, int], entry: _Cached) -> None:
        with self._lock:
            if key not in self._cache and len(self._cache) >= MAX_CACHED:
                now = self._clock()
                for stale in [k for k, c in self._cache.items() if c.expires_at <= now]:
                    del self._cache[stale]
                if len(self._cache) >= MAX_CACHED:
                    del self._cache[next(iter(self._cache))]  # the oldest entry
            self._cache[key] = entry
