"""The gateway's keys and trust from the settings: its signing keys (an RSA or ECDSA one, a GOST one, or both;
PKCS#12, or PEM key and certificate; passphrases are never logged) and the trusted CAs with their CRLs and OCSP."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from gateway.config import Settings
from gateway.security.crls import CrlStore
from gateway.security.ocsp import OcspClient
from gateway.security.trust import Family, RevocationPolicy, TrustStore, load_certificates
from gateway.security.wssec import EnvelopeSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayKeys:
    """The gateway's keys. ``signer`` is its RSA or ECDSA key (or its only key), ``gost`` its GOST key; during a
    rotation the previous RSA key stays loaded so that messages senders still encrypt to its certificate can be
    read (GOST keys never decrypt, so a GOST key rotates by replacing it)."""

    signer: EnvelopeSigner | None
    previous: EnvelopeSigner | None = None
    gost: EnvelopeSigner | None = None

    @property
    def decryption_keys(self) -> tuple[rsa.RSAPrivateKey, ...]:
        """The RSA keys that may have been encrypted to, current first."""
        return tuple(
            key.private_key for key in (self.signer, self.previous) if key is not None and isinstance(key.private_key, rsa.RSAPrivateKey)
        )

    def for_gost(self, gost: bool) -> EnvelopeSigner | None:
        """The key to sign with when GOST is (or is not) wanted: that family's key when the gateway holds one,
        else its other key, so that a message is never sent unsigned for want of the preferred algorithm."""
        preferred, other = (self.gost, self.signer) if gost else (self.signer, self.gost)
        return preferred or other

    @property
    def sealing(self) -> EnvelopeSigner | None:
        """The key that seals the journals: the RSA or ECDSA one, which auditors' tools verify without GOST code
        (docs/tamper-evidence.md)."""
        return self.signer

    @property
    def any(self) -> EnvelopeSigner | None:
        """Some key of the gateway's, RSA first: whether it can sign at all."""
        return self.signer or self.gost


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_keys(settings: Settings) -> GatewayKeys:
    """The gateway's current and (during a rotation) previous key, and its GOST key, when configured."""
    signer = previous = gost = None
    if settings.signing_key is not None:
        signer = EnvelopeSigner.load(settings.signing_key, settings.signing_cert, _secret(settings.signing_key_password))
    if settings.previous_signing_key is not None:
        previous = EnvelopeSigner.load(
            settings.previous_signing_key, settings.previous_signing_cert, _secret(settings.previous_signing_key_password)
        )
    if settings.gost_signing_key is not None:
        gost = EnvelopeSigner.load(
            settings.gost_signing_key, settings.gost_signing_cert, _secret(settings.gost_signing_key_password)
        )
        if not gost.is_gost:
            raise ValueError("GATEWAY_GOST_SIGNING_KEY is not a GOST key")
    if signer is not None and signer.is_gost:
        if gost is not None:
            raise ValueError("GATEWAY_SIGNING_KEY is a GOST key too: it takes the RSA or ECDSA key, GATEWAY_GOST_SIGNING_KEY the GOST one")
        signer, gost = None, signer  # the only key, and it is GOST: it is the gateway's GOST key
    return GatewayKeys(signer, previous, gost)


def load_trust_store(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> TrustStore | None:
    """The trusted CAs by family, their CRLs and the OCSP client, when configured; certificates are judged at
    ``clock``'s time."""
    files = {Family.RSA: settings.trusted_ca_file, Family.GOST: settings.trusted_gost_ca_file}
    if not any(files.values()):
        log.warning("no GATEWAY_TRUSTED_CA_FILE or GATEWAY_TRUSTED_GOST_CA_FILE: callers' chains and revocation are not checked")
        return None
    authorities = {family: load_certificates(path) for family, path in files.items() if path is not None}
    sources = [source.strip() for source in settings.crl_sources.split(",") if source.strip()]
    crls = CrlStore([ca for cas in authorities.values() for ca in cas], sources, settings.crl_refresh_seconds)
    policy = RevocationPolicy(settings.revocation_policy)
    ocsp = None
    if policy is not RevocationPolicy.CRL:
        ocsp = OcspClient(
            responder_override=settings.ocsp_responder_url,
            timeout_seconds=settings.ocsp_timeout_seconds,
            max_age_seconds=settings.ocsp_max_age_seconds,
            clock=clock,
        )
    return TrustStore(authorities, crls, policy, ocsp, clock)
