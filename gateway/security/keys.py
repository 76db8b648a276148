"""The gateway's keys and trust from the settings: its signing key (PKCS#12, or PEM key and certificate; the
passphrase is never logged) and the trusted CAs with their CRLs."""
from __future__ import annotations

import logging

from gateway.config import Settings
from gateway.security.certificates import TrustStore
from gateway.security.wssec import EnvelopeSigner

log = logging.getLogger(__name__)


def load_signer(settings: Settings) -> EnvelopeSigner | None:
    """The gateway's signing key, when one is configured."""
    if settings.signing_key is None:
        return None
    password = settings.signing_key_password.get_secret_value() if settings.signing_key_password else None
    return EnvelopeSigner.load(settings.signing_key, settings.signing_cert, password)


def load_trust_store(settings: Settings) -> TrustStore | None:
    """The trusted CAs and their CRLs, when configured."""
    if settings.trusted_ca_file is None:
        log.warning("GATEWAY_TRUSTED_CA_FILE is not set: callers' certificate chains and revocation are not checked")
        return None
    sources = [source.strip() for source in settings.crl_sources.split(",") if source.strip()]
    return TrustStore.from_files(settings.trusted_ca_file, sources, settings.crl_refresh_seconds)
