"""Test keys and certificates: issued by a CA of their own that nobody trusts (for checks that do not involve
the gateway's trust store), shaped like the national CA's through :mod:`gateway.security.pki`."""
from __future__ import annotations

from gateway.security.pki import create_ca, issue_participant


def participant(bin_: str | None, days: int = 365, ecdsa: bool = False, not_before_days: int = -1) -> tuple[bytes, bytes]:
    """A key and certificate (PEM) carrying ``bin_`` in OU, from a throw-away CA."""
    holder = issue_participant(
        create_ca("Untrusted test CA"), bin_, ecdsa=ecdsa, valid_from_days=not_before_days, valid_days=days - not_before_days
    )
    return holder.key_pem, holder.cert_pem
