"""Writing the logging journal (Appendix 6): one row per received or sent message."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, insert

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
    """Appends journal rows; all rows of one call land in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert(LoggingJournalEntry)

    def write(self, records: list[JournalRecord]) -> None:
        """Append ``records`` durably before returning."""
        if not records:
            return
        with self._engine.begin() as connection:
            connection.execute(self._insert, [asdict(record) for record in records])
