"""The caller checks both channels apply by security mode (gateway-rules.md §3.3): signature in modes 2 and 3,
encryption in mode 3."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from gateway.errors import ErrorCode, GatewayError
from gateway.security.certificates import check_signer
from gateway.security.encryption import can_encrypt_to
from gateway.security.modes import ServicePolicy
from gateway.security.replay import ReplayGuard
from gateway.security.trust import TrustStore
from gateway.security.wssec import CertificateLookup, VerifiedSignature
from registry.snapshot import RegistrySnapshot, SenderView

log = logging.getLogger(__name__)
SignatureVerifier = Callable[[CertificateLookup], VerifiedSignature]


@dataclass(frozen=True)
class ReceivedProtection:
    """How a request arrived: whether its Body came encrypted, and how to verify its transport signature."""

    encrypted: bool
    verify: SignatureVerifier


class CallerSignatures:
    """Verifies a caller's transport signature, binds it to the sender's organisation, checks trust and replay."""

    def __init__(
        self, replay: ReplayGuard, trust: TrustStore | None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._replay = replay
        self._trust = trust
        self._clock = clock

    async def check(
        self,
        snapshot: RegistrySnapshot,
        sender: SenderView,
        message_id: str | None,
        protection: ReceivedProtection,
        policy: ServicePolicy,
        revocation_fail_open: bool = False,
    ) -> x509.Certificate:
        """Raise the catalogue error for the first thing wrong with the caller's protection; return the
        certificate the caller signed with. On the event loop: the signature is verified on it (CPU only); a
        revocation check that needs the network, and the replay record, are awaited without holding it."""
        if policy.caller_encrypts and not protection.encrypted:
            raise GatewayError(ErrorCode.MESSAGE_NOT_ENCRYPTED, "the service is in security mode 3")
        signature = protection.verify(lambda issuer, serial: snapshot.certificates.get((issuer, serial)))
        check_signer(signature.certificate, sender.organisation_bin, self._clock())
        if self._trust is not None:
            if self._trust.answers_from_memory():
                self._trust.check(signature.certificate, revocation_fail_open)
            else:  # a CRL refresh or an OCSP question may wait on the network
                await asyncio.to_thread(self._trust.check, signature.certificate, revocation_fail_open)
        await self._replay.check_async(signature.signature_value, sender.sender_id, message_id)
        return signature.certificate


def answer_recipient(sender: SenderView, signer_certificate: x509.Certificate) -> x509.Certificate | None:
    """The certificate to encrypt a mode-3 answer to: the caller's signing certificate when it is RSA, else its
    newest registered RSA certificate; None when it has neither (the answer then goes signed, unencrypted)."""
    if can_encrypt_to(signer_certificate):
        return signer_certificate
    registered = sender.encryption_certificate()
    if registered is None:
        log.warning("%s signs with a non-RSA key and has no RSA certificate registered: its mode-3 answer goes unencrypted",
                    sender.sender_id)
    return registered
