"""Sender authentication by ``senderId``/``password``, with verified results cached briefly.

The KDF (Argon2id) costs tens of milliseconds on purpose, so paying it per message would cap throughput. A
successful check is remembered for ``ttl`` seconds as an HMAC of the password under a per-process random key,
bound to the stored hash (a password reset invalidates it at once); a cached check is a constant-time compare.
Failures are never cached.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading

from cachetools import TTLCache

from registry.credentials import password_matches
from registry.snapshot import SenderView


class SenderAuthenticator:
    """Checks sender credentials against the registry's stored hashes."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._cache: TTLCache[tuple[str, str], bytes] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    def authenticate(self, sender: SenderView | None, password: str | None) -> bool:
        """Whether ``password`` is the password of ``sender`` (False for unknown senders or no password)."""
        if sender is None or sender.password_hash is None or password is None:
            return False
        digest = hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()
        key = (sender.sender_id, sender.password_hash)
        if self._cache is not None:
            with self._lock:
                remembered = self._cache.get(key)
            if remembered is not None and hmac.compare_digest(remembered, digest):
                return True
        if not password_matches(sender.password_hash, password):
            return False
        if self._cache is not None:
            with self._lock:
                self._cache[key] = digest
        return True
