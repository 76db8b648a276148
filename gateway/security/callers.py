"""The caller-signature check both channels apply to services in security mode 2 or 3."""
from __future__ import annotations

from collections.abc import Callable

from gateway.security.certificates import TrustStore, check_signer
from gateway.security.replay import ReplayGuard
from gateway.security.wssec import CertificateLookup, VerifiedSignature
from registry.snapshot import RegistrySnapshot, SenderView

SignatureVerifier = Callable[[CertificateLookup], VerifiedSignature]
SIGNED_CALLER_MODE = 2  # security modes 2 and 3: the caller's transport signature is required (gateway-rules.md §3.3)
GATEWAY_SIGNS_MODE = 1  # security modes 1-3: what the gateway sends on carries its own transport signature


class CallerSignatures:
    """Verifies a caller's transport signature, binds it to the sender's organisation, checks trust and replay."""

    def __init__(self, replay: ReplayGuard, trust: TrustStore | None) -> None:
        self._replay = replay
        self._trust = trust

    def check(
        self, snapshot: RegistrySnapshot, sender: SenderView, message_id: str | None, verify_signature: SignatureVerifier
    ) -> None:
        """Raise the catalogue error for the first thing wrong with the caller's signature."""
        signature = verify_signature(lambda issuer, serial: snapshot.certificates.get((issuer, serial)))
        check_signer(signature.certificate, sender.organisation_bin)
        if self._trust is not None:
            self._trust.check(signature.certificate)
        self._replay.check(signature.signature_value, sender.sender_id, message_id)
