"""Replay detection for signed messages: the same signature value, or the same ``messageId`` from the same
sender, seen again within the window is refused. Kept in the database, so every gateway process agrees.

One record per message: the sender's ``messageId`` when the message has one, else its signature value. The
messageId and the senderId are inside the signed Body, so the same signature value always comes with the same
messageId of the same sender (a signature verifies over one SignedInfo, which holds the Body's digest): recording
the signature as well would only double the writes. The messageId is the stronger key of the two, since a
message signed again (ECDSA signs differently each time, and an ECDSA value can be altered without breaking it)
has a new signature value but the same messageId.

Concurrent checks share one transaction (leader-based group commit, :class:`journals.group_commit.GroupCommit`):
the leader upserts every digest of the batch in one ``INSERT … ON CONFLICT (digest) DO UPDATE … WHERE seen_at <
cutoff RETURNING digest``, written in the driver's own SQL (SQLAlchemy's executemany machinery cost more CPU than
the statement itself). A returned digest was absent or expired (now recorded); one not returned was seen within
the window, by an earlier message or by another process. The batch's checks are then decided in arrival order,
exactly as if they had run one after another: a check is refused when its digest was live in the table or was
recorded by an earlier check of the same batch. A database failure fails every check of the batch (it raises)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, delete, select

from gateway.errors import ErrorCode, GatewayError
from gateway.store.models import SeenSignature
from journals.group_commit import GroupCommit

PRUNE_EVERY = 500  # checks between two deletions of every expired record


@dataclass(slots=True)
class _Check:
    """One message's record, and (set by the batch's leader) whether it was a replay."""

    digest: str
    replayed: bool = False


class _Upsert:
    """``INSERT … VALUES (…), (…) ON CONFLICT (digest) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at <
    cutoff RETURNING digest`` for ``n`` rows, in the driver's SQL (the same on SQLite and PostgreSQL but for the
    placeholder), built once per row count: returns the digests inserted or overwritten (absent or expired)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        if dialect.name not in ("sqlite", "postgresql"):  # pragma: no cover - the gateway runs on these two
            raise RuntimeError(f"the replay guard does not support the {dialect.name} database")
        table = SeenSignature.__table__
        self._table = table.name
        self._placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self._time = table.c.seen_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
        self._statements: dict[int, str] = {}

    def __call__(self, connection: Connection, digests: list[str], now: datetime, cutoff: datetime) -> set[str]:
        if len(digests) not in self._statements:
            row = f"({self._placeholder}, {self._placeholder})"
            self._statements[len(digests)] = (
                f"INSERT INTO {self._table} (digest, seen_at) VALUES {', '.join([row] * len(digests))} "
                f"ON CONFLICT (digest) DO UPDATE SET seen_at = excluded.seen_at "
                f"WHERE {self._table}.seen_at < {self._placeholder} RETURNING digest"
            )
        seen_at = self._time(now)
        parameters = [value for digest in digests for value in (digest, seen_at)]
        parameters.append(self._time(cutoff))
        return {row[0] for row in connection.exec_driver_sql(self._statements[len(digests)], tuple(parameters))}


def _digest(signature_value: bytes, sender_id: str, message_id: str | None) -> str:
    if message_id is not None:
        return "msg:" + hashlib.sha256(f"{sender_id}\x00{message_id}".encode()).hexdigest()[:60]
    return "sig:" + hashlib.sha256(signature_value).hexdigest()[:60]


def _refuse_replay(check: _Check) -> None:
    if check.replayed:
        raise GatewayError(ErrorCode.REPLAYED_MESSAGE, "this signature, or this messageId of the sender, was seen before")


class ReplayGuard:
    """Remembers what was seen for ``window_seconds``."""

    def __init__(self, engine: Engine, window_seconds: float) -> None:
        self._window = timedelta(seconds=window_seconds)
        self._upsert = _Upsert(engine)
        # SKIP LOCKED (PostgreSQL; ignored by SQLite): the prune never waits for, nor deadlocks with, the rows another
        # process is upserting right now; what it skips is pruned next time.
        expired = select(SeenSignature.digest).where(SeenSignature.seen_at < bindparam("cutoff")).with_for_update(skip_locked=True)
        self._forget_expired = delete(SeenSignature).where(SeenSignature.digest.in_(expired.scalar_subquery()))
        self._checked = 0  # only the batch's leader touches it, and there is one leader at a time
        self._batches: GroupCommit[_Check] = GroupCommit(engine, self._write_batch)

    def check(self, signature_value: bytes, sender_id: str, message_id: str | None) -> None:
        """Record this signed message; raise REPLAYED_MESSAGE when its sender's messageId (without one: its
        signature value) was seen. Raises the database's error when the record could not be written."""
        check = _Check(_digest(signature_value, sender_id, message_id))
        self._batches.submit(check)  # returns once the batch holding it committed; raises if it failed
        _refuse_replay(check)

    async def check_async(self, signature_value: bytes, sender_id: str, message_id: str | None) -> None:
        """:meth:`check` for a coroutine: the loop goes on while the process's writer records it."""
        check = _Check(_digest(signature_value, sender_id, message_id))
        await self._batches.submit_async(check)
        _refuse_replay(check)

    def _write_batch(self, connection: Connection, checks: list[_Check]) -> None:
        """Record a batch of checks in the caller's transaction and set each one's ``replayed``."""
        now = datetime.now(UTC)
        cutoff = now - self._window
        # Sorted: every process locks rows in the same order, so two batches never deadlock each other (PostgreSQL).
        unique = sorted({check.digest for check in checks})
        recorded = self._upsert(connection, unique, now, cutoff)
        # Decide in arrival order, as if one after another: ``live`` is what an earlier message left in the window,
        # and a digest recorded by this batch is live for every check after the first that brought it.
        live = set(unique) - recorded
        for check in checks:
            check.replayed = check.digest in live
            live.add(check.digest)
        before, self._checked = self._checked, self._checked + len(checks)
        if before // PRUNE_EVERY != self._checked // PRUNE_EVERY:
            connection.execute(self._forget_expired, {"cutoff": cutoff})
