"""Writing the logging journal (Appendix 6): one row per received or sent message.

Rows are group-committed (:mod:`journals.group_commit`); a caller that already holds a transaction (the
asynchronous channel storing a message with its journal row) writes them inside it with :meth:`write_in`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from journals.group_commit import GroupCommit, MultiRowInsert
from journals.models import LoggingJournalEntry


@dataclass(frozen=True)
class JournalRecord:
    """What the journal keeps of one message."""

    channel: str
    state: str
    message_id: str | None = None
    correlation_id: str | None = None
    received_at: datetime | None = None
    sent_at: datetime | None = None
    message_type: str | None = None
    sender: str | None = None
    recipient: str | None = None
    service_id: str | None = None
    route_id: str | None = None
    session_id: str | None = None
    error_code: str | None = None
    duration_ms: float | None = None


class LoggingJournal:
    """Appends journal rows durably; :meth:`write` returns once its rows are committed."""

    def __init__(self, engine: Engine) -> None:
        self._insert = MultiRowInsert(engine, LoggingJournalEntry.__table__)
        self._commits: GroupCommit[list[JournalRecord]] = GroupCommit(engine, self._write_batch)

    def write(self, records: list[JournalRecord]) -> None:
        """Append ``records`` in one transaction (possibly shared with other callers); raise if it failed."""
        if records:
            self._commits.submit(records)

    async def write_async(self, records: list[JournalRecord]) -> None:
        """:meth:`write` for a coroutine: the loop goes on while the process's journal writer commits."""
        if records:
            await self._commits.submit_async(records)

    def write_in(self, connection: Connection, records: list[JournalRecord]) -> None:
        """Append ``records`` within the caller's transaction."""
        # Records hold only flat values, so their __dict__ is the row (asdict would deep-copy each one).
        self._insert.execute(connection, [record.__dict__ for record in records])

    def _write_batch(self, connection: Connection, batches: list[list[JournalRecord]]) -> None:
        self.write_in(connection, [record for records in batches for record in records])

    def close(self) -> None:
        """Nothing is held between calls; kept so owners can release every component alike."""
