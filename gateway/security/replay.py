"""Replay detection for signed messages: the same signature value, or the same ``messageId`` from the same
sender, seen again within the window is refused. Kept in the database, so every gateway process agrees."""
from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, bindparam, delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.errors import ErrorCode, GatewayError
from gateway.store.models import SeenSignature

PRUNE_EVERY = 500


class ReplayGuard:
    """Remembers what was seen for ``window_seconds``."""

    def __init__(self, engine: Engine, window_seconds: float) -> None:
        self._engine = engine
        self._window = timedelta(seconds=window_seconds)
        self._counter = itertools.count(1)
        # Built once: constructing statements per message cost more than running them.
        self._forget_expired = delete(SeenSignature).where(SeenSignature.seen_at < bindparam("cutoff"))
        self._forget_these = delete(SeenSignature).where(
            SeenSignature.digest.in_(bindparam("digests", expanding=True)), SeenSignature.seen_at < bindparam("cutoff")
        )
        self._remember = insert(SeenSignature)

    def check(self, signature_value: bytes, sender_id: str, message_id: str | None) -> None:
        """Record this signed message; raise REPLAYED_MESSAGE when it (or its sender's messageId, when the sender
        gives one) was seen."""
        now = datetime.now(UTC)
        digests = ["sig:" + hashlib.sha256(signature_value).hexdigest()[:60]]
        if message_id is not None:
            digests.append("msg:" + hashlib.sha256(f"{sender_id}\x00{message_id}".encode()).hexdigest()[:60])
        cutoff = now - self._window
        try:
            with self._engine.begin() as connection:
                if next(self._counter) % PRUNE_EVERY == 0:
                    connection.execute(self._forget_expired, {"cutoff": cutoff})
                else:
                    connection.execute(self._forget_these, {"digests": digests, "cutoff": cutoff})
                connection.execute(self._remember, [{"digest": d, "seen_at": now} for d in digests])
        except IntegrityError as exc:
            raise GatewayError(ErrorCode.REPLAYED_MESSAGE, "this signature, or this messageId of the sender, was seen before") from exc
