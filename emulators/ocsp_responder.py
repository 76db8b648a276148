"""An OCSP responder (RFC 6960) standing in for NCA's ``http://ocsp.pki.gov.kz``: requests over POST (DER body)
and GET (``/<base64 of the DER request>``, Appendix A.1), answers built and signed by ``cryptography``'s
OCSPResponseBuilder with an RSA or EC key, the CA's own or a delegated responder's.

It answers for one CA: "good" unless the serial is in its revocation table (settable while it runs), "unknown"
for serials outside ``issued_serials`` when that is set and for other issuers, malformedRequest for anything
that is not an OCSP request. It counts requests so tests can see
what the client's cache saved. GOST signing is out of reach of ``cryptography``'s builder, so the emulator signs
as NCA's RSA responder does.
"""
from __future__ import annotations

import base64
import binascii
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from emulators.http import reply
from gateway.security.ocsp import cert_id_hashes

MAX_REQUEST_BYTES = 16 * 1024
RESPONSE_TYPE = "application/ocsp-response"
SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Revocation:
    """When a certificate was revoked, and why (None: no reason given)."""

    at: datetime
    reason: x509.ReasonFlags | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OcspResponderEmulator:
    """A WSGI OCSP responder for the certificates of ``ca``, signing with ``signer_key``: the CA's key when
    ``signer_certificate`` is None, else the key of that (delegated) responder certificate, which every response
    carries. ``next_update`` (None: responses without one, as NCA's) may be changed while it runs."""

    def __init__(
        self,
        ca: x509.Certificate,
        signer_key: SignerKey,
        signer_certificate: x509.Certificate | None = None,
        *,
        next_update: timedelta | None = timedelta(hours=1),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.ca = ca
        self.next_update = next_update
        self._key = signer_key
        self._signer = signer_certificate or ca
        self._delegated = signer_certificate is not None
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[int, Revocation] = {}
        self.issued_serials: set[int] | None = None  # None: every serial of the CA counts as issued
        self.echo_nonce = True  # False: answer as a responder that ignores nonces
        self.requests = 0  # OCSP requests received, well-formed or not
        self.methods: Counter[str] = Counter()  # how many of them came by GET and by POST

    @classmethod
    def from_files(
        cls, ca_file: Path, key_file: Path, signer_file: Path | None = None, next_update_seconds: float | None = 3600.0
    ) -> OcspResponderEmulator:
        """An emulator from a CA certificate (PEM or DER), an unencrypted PEM private key, and the delegated
        responder's certificate that key belongs to (None: the key is the CA's)."""
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("the responder key must be RSA or EC")
        signer = _load_certificate(signer_file) if signer_file is not None else None
        next_update = timedelta(seconds=next_update_seconds) if next_update_seconds is not None else None
        return cls(_load_certificate(ca_file), key, signer, next_update=next_update)

    def revoke(self, serial: int, at: datetime, reason: x509.ReasonFlags | None = None) -> None:
        """From now on, answer that certificate ``serial`` was revoked at ``at``."""
        with self._lock:
            self._revoked[serial] = Revocation(at, reason)

    def reinstate(self, serial: int) -> None:
        """From now on, answer "good" for certificate ``serial`` again."""
        with self._lock:
            self._revoked.pop(serial, None)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/").lstrip("/")
        if method == "GET" and not path:
            return reply(start_response, 200, b"OCSP responder emulator\n", "text/plain")
        if method not in ("GET", "POST"):
            return reply(start_response, 405, b"GET or POST\n", "text/plain")
        with self._lock:
            self.requests += 1
            self.methods[method] += 1
        der = _post_body(environ) if method == "POST" else _get_body(path)
        return reply(start_response, 200, self.answer(der), RESPONSE_TYPE)

    def answer(self, request_der: bytes | None) -> bytes:
        """The DER response to a DER request (None, or anything not a single-certificate OCSP request, gets
        malformedRequest)."""
        parsed = _parse(request_der)
        if parsed is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        request, algorithm, nonce = parsed
        this_update = self._clock()
        status, revoked_at, reason = self._status(request, algorithm)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, request.serial_number, algorithm,
            status, this_update, this_update + self.next_update if self.next_update is not None else None, revoked_at, reason,
        ).responder_id(ocsp.OCSPResponderEncoding.NAME, self._signer)
        if self._delegated:
            builder = builder.certificates([self._signer])
        if nonce is not None and self.echo_nonce:
            builder = builder.add_extension(nonce, critical=False)
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _status(
        self, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm
    ) -> tuple[ocsp.OCSPCertStatus, datetime | None, x509.ReasonFlags | None]:
        if (request.issuer_name_hash, request.issuer_key_hash) != cert_id_hashes(self.ca, algorithm):
            return ocsp.OCSPCertStatus.UNKNOWN, None, None
        with self._lock:
            issued = self.issued_serials is None or request.serial_number in self.issued_serials
            revocation = self._revoked.get(request.serial_number)
        if not issued:
            return ocsp.OCSPCertStatus.UNKNOWN, None, None
        if revocation is None:
            return ocsp.OCSPCertStatus.GOOD, None, None
        return ocsp.OCSPCertStatus.REVOKED, revocation.at, revocation.reason


def _parse(der: bytes | None) -> tuple[ocsp.OCSPRequest, hashes.HashAlgorithm, x509.OCSPNonce | None] | None:
    """The request, its CertID's hash algorithm and its nonce; None for anything else."""
    if der is None:
        return None
    try:
        request = ocsp.load_der_ocsp_request(der)
        # cryptography parses a request's parts as they are read, so a malformed one may fail only here.
        algorithm = request.hash_algorithm
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        except x509.ExtensionNotFound:
            nonce = None
    except (ValueError, UnsupportedAlgorithm):
        return None
    return request, algorithm, nonce


def _post_body(environ: dict[str, Any]) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= MAX_REQUEST_BYTES:
        return None
    return environ["wsgi.input"].read(length)


def _get_body(path: str) -> bytes | None:
    """The DER request of a GET path: base64, standard or URL-safe, padded or not, URL-escaped or not (servers
    differ in whether they undo %2F before the application sees the path)."""
    text = unquote(path).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _load_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
