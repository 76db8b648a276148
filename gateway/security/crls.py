"""Certificate revocation lists of the trusted CAs: fetched from files or http(s) URLs, their signatures checked
(RSA, ECDSA or GOST, :func:`gateway.security.public_keys.verify_signed_data`), kept in memory and fetched again
once older than the refresh interval; a failed refresh keeps the last good copy."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import urllib3
from cryptography import x509

from gateway.security.public_keys import signed_by

log = logging.getLogger(__name__)
MAX_CRL_BYTES = 64 * 1024 * 1024  # NCA's production CRLs run to tens of megabytes


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM."""
    return x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` named and signed ``crl``: GOST here, anything else by ``cryptography``."""
    return crl.issuer == issuer.subject and signed_by(
        issuer, crl.signature_algorithm_oid.dotted_string, crl.signature, crl.tbs_certlist_bytes,
        lambda: crl.is_signature_valid(issuer.public_key()),  # type: ignore[arg-type]
    )


class CrlStore:
    """The CRLs of ``authorities`` from ``sources``; the first source configured for an issuer counts."""

    def __init__(self, authorities: Iterable[x509.Certificate], sources: list[str], refresh_seconds: float) -> None:
        self._authorities = list(authorities)
        self._sources = sources
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        # By source: each CRL with the authority whose signature on it was checked at load.
        self._crls: dict[str, tuple[x509.CertificateRevocationList, x509.Certificate]] = {}
        self._crl_of_authority: dict[x509.Certificate, x509.CertificateRevocationList] = {}
        # None until the first load: a monotonic clock may start near zero on a freshly booted machine.
        self._loaded_at: float | None = None
        self._http = urllib3.PoolManager(retries=False, timeout=10.0)

    def crl_of(self, issuer: x509.Certificate) -> x509.CertificateRevocationList | None:
        """``issuer``'s CRL, loading or refreshing the CRLs first when they are due."""
        if self.due():
            with self._lock:
                if self.due():
                    self._reload()
        return self._crl_of_authority.get(issuer)

    def freshness(self) -> dict[str, datetime | None]:
        """Each source and its CRL's ``nextUpdate`` (None when it never loaded), for health reports. A CRL that
        lists no certificate is loaded all the same (an empty CRL is falsy: compare with None)."""
        return {
            source: (loaded[0].next_update_utc if (loaded := self._crls.get(source)) is not None else None)
            for source in self._sources
        }

    def due(self) -> bool:
        """Whether the next :meth:`crl_of` loads the CRLs (from files or over the network) before it answers."""
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self._refresh

    def _reload(self) -> None:
        for source in self._sources:
            try:
                crl = load_crl(self._fetch(source))
                signer = next((authority for authority in self._authorities if crl_signed_by(crl, authority)), None)
                if signer is None:
                    raise ValueError("the CRL is not signed by a trusted CA")
                self._crls[source] = (crl, signer)
            except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                log.warning("CRL %s could not be refreshed (%s); keeping the last good copy", source, exc.__class__.__name__)
        crl_of_authority: dict[x509.Certificate, x509.CertificateRevocationList] = {}
        for crl, signer in self._crls.values():  # in the order the sources are configured
            crl_of_authority.setdefault(signer, crl)
        self._crl_of_authority = crl_of_authority
        self._loaded_at = time.monotonic()

    def _fetch(self, source: str) -> bytes:
        if source.startswith(("http://", "https://")):
            response = self._http.request("GET", source, preload_content=False)
            try:
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
                data = response.read(MAX_CRL_BYTES + 1)
            finally:
                response.release_conn()
            if len(data) > MAX_CRL_BYTES:
                raise ValueError("the CRL is larger than the gateway accepts")
            return data
        return Path(source).read_bytes()
