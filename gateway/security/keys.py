"""The gateway's signing key, from the settings (PKCS#12, or PEM key and certificate; passphrase never logged)."""
from __future__ import annotations

from gateway.config import Settings
from gateway.security.wssec import EnvelopeSigner


def load_signer(settings: Settings) -> EnvelopeSigner | None:
    """The gateway's signing key, when one is configured."""
    if settings.signing_key is None:
        return None
    password = settings.signing_key_password.get_secret_value() if settings.signing_key_password else None
    return EnvelopeSigner.load(settings.signing_key, settings.signing_cert, password)
