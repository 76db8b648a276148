"""Sender passwords: hashed with Argon2id (OWASP parameters), never stored or logged in clear."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's recommended floor for Argon2id: 19 MiB, 2 passes, 1 lane (tens of milliseconds per hash here).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """Return the Argon2id hash string of ``password`` (it carries its own salt and parameters)."""
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Check ``password`` against ``password_hash`` with the KDF (constant-time inside argon2)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
