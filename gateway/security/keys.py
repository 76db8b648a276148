"""The gateway's keys and trust from the settings: its signing key (PKCS#12, or PEM key and certificate; the
passphrase is never logged) and the trusted CAs with their CRLs."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from gateway.config import Settings
from gateway.security.certificates import TrustStore
from gateway.security.wssec import EnvelopeSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayKeys:
    """The gateway's keys: the current one signs everything the gateway sends; during a rotation the previous
    one stays loaded so that messages senders still encrypt to its certificate can be read."""

    signer: EnvelopeSigner | None
    previous: EnvelopeSigner | None = None

    @property
    def decryption_keys(self) -> tuple[rsa.RSAPrivateKey, ...]:
        """The RSA keys that may have been encrypted to, current first."""
        return tuple(
            key.private_key for key in (self.signer, self.previous) if key is not None and isinstance(key.private_key, rsa.RSAPrivateKey)
        )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_keys(settings: Settings) -> GatewayKeys:
    """The gateway's current and (during a rotation) previous key, when configured."""
    signer = previous = None
    if settings.signing_key is not None:
        signer = EnvelopeSigner.load(settings.signing_key, settings.signing_cert, _secret(settings.signing_key_password))
    if settings.previous_signing_key is not None:
        previous = EnvelopeSigner.load(
            settings.previous_signing_key, settings.previous_signing_cert, _secret(settings.previous_signing_key_password)
        )
    return GatewayKeys(signer, previous)


def load_trust_store(settings: Settings) -> TrustStore | None:
    """The trusted CAs and their CRLs, when configured."""
    if settings.trusted_ca_file is None:
        log.warning("GATEWAY_TRUSTED_CA_FILE is not set: callers' certificate chains and revocation are not checked")
        return None
    sources = [source.strip() for source in settings.crl_sources.split(",") if source.strip()]
    return TrustStore.from_files(settings.trusted_ca_file, sources, settings.crl_refresh_seconds)
