"""Replay detection for signed messages: the same signature value, or the same ``messageId`` from the same
sender, seen again within the window is refused. Kept in the database, so every gateway process agrees.

Concurrent checks share one transaction (leader-based group commit, :class:`journals.group_commit.GroupCommit`):
the leader upserts every digest of the batch in one ``INSERT … ON CONFLICT (digest) DO UPDATE … WHERE seen_at <
cutoff RETURNING digest``. A returned digest was absent or expired (now recorded); one not returned was seen within
the window, by an earlier message or by another process. The batch's checks are then decided in arrival order,
exactly as if they had run one after another: a check is refused when any of its digests was live in the table or
was recorded by an earlier check of the same batch; a refused check records nothing (the digests only it brought
are deleted again in the same transaction). A database failure fails every check of the batch (it raises)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Executable, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.errors import ErrorCode, GatewayError
from gateway.store.models import SeenSignature
from journals.group_commit import GroupCommit

PRUNE_EVERY = 500  # checks between two deletions of every expired record


@dataclass(slots=True)
class _Check:
    """One message's digests, and (set by the batch's leader) whether it was a replay."""

    digests: tuple[str, ...]
    replayed: bool = False


def _upsert(engine: Engine) -> Executable:
    """Insert ``digest, seen_at`` rows; a conflicting row is overwritten only when it had expired (``seen_at <
    :cutoff``); returns the digests inserted or overwritten. Built once and run as an executemany, which SQLAlchemy
    sends as one multi-row INSERT … RETURNING ("insertmanyvalues"); a statement built per batch would be compiled
    per batch, which costs more than running it."""
    dialects = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if engine.dialect.name not in dialects:  # pragma: no cover - the gateway runs on these two
        raise RuntimeError(f"the replay guard does not support the {engine.dialect.name} database")
    table = SeenSignature.__table__
    statement = dialects[engine.dialect.name](table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.digest], set_={"seen_at": statement.excluded.seen_at}, where=table.c.seen_at < bindparam("cutoff")
    ).returning(table.c.digest)


class ReplayGuard:
    """Remembers what was seen for ``window_seconds``."""

    def __init__(self, engine: Engine, window_seconds: float) -> None:
        self._window = timedelta(seconds=window_seconds)
        self._upsert = _upsert(engine)
        self._forget = delete(SeenSignature).where(SeenSignature.digest.in_(bindparam("digests", expanding=True)))
        # SKIP LOCKED (PostgreSQL; ignored by SQLite): the prune never waits for, nor deadlocks with, the rows another
        # process is upserting right now; what it skips is pruned next time.
        expired = select(SeenSignature.digest).where(SeenSignature.seen_at < bindparam("cutoff")).with_for_update(skip_locked=True)
        self._forget_expired = delete(SeenSignature).where(SeenSignature.digest.in_(expired.scalar_subquery()))
        self._checked = 0  # only the batch's leader touches it, and there is one leader at a time
        self._batches: GroupCommit[_Check] = GroupCommit(engine, self._write_batch)

    def check(self, signature_value: bytes, sender_id: str, message_id: str | None) -> None:
        """Record this signed message; raise REPLAYED_MESSAGE when it (or its sender's messageId, when the sender
        gives one) was seen. Raises the database's error when the record could not be written."""
        digests = ["sig:" + hashlib.sha256(signature_value).hexdigest()[:60]]
        if message_id is not None:
            digests.append("msg:" + hashlib.sha256(f"{sender_id}\x00{message_id}".encode()).hexdigest()[:60])
        check = _Check(tuple(digests))
        self._batches.submit(check)  # returns once the batch holding it committed; raises if it failed
        if check.replayed:
            raise GatewayError(ErrorCode.REPLAYED_MESSAGE, "this signature, or this messageId of the sender, was seen before")

    def _write_batch(self, connection: Connection, checks: list[_Check]) -> None:
        """Record a batch of checks in the caller's transaction and set each one's ``replayed``."""
        now = datetime.now(UTC)
        cutoff = now - self._window
        # Sorted: every process locks rows in the same order, so two batches never deadlock each other (PostgreSQL).
        unique = sorted({digest for check in checks for digest in check.digests})
        rows = [{"digest": digest, "seen_at": now, "cutoff": cutoff} for digest in unique]
        recorded = set(connection.execute(self._upsert, rows).scalars())
        # Decide in arrival order, as if one after another: ``live`` is what an earlier message left in the window.
        live = set(unique) - recorded
        kept: set[str] = set()
        for check in checks:
            check.replayed = any(digest in live for digest in check.digests)
            if not check.replayed:
                live.update(check.digests)
                kept.update(check.digests)
        if unrecorded := recorded - kept:  # brought only by refused checks: a refused message leaves no record
            connection.execute(self._forget, {"digests": sorted(unrecorded)})
        before, self._checked = self._checked, self._checked + len(checks)
        if before // PRUNE_EVERY != self._checked // PRUNE_EVERY:
            connection.execute(self._forget_expired, {"cutoff": cutoff})
