"""The incident journal (gateway-rules.md §6.3, Appendix 7): entries are opened automatically (a breaker switching
a delivery point off, a message delivered late past the threshold); an administrator records who was notified
and when, when the responsible person arrived, the cause, the measures taken, when the message was finally sent
and by whom, and closes the entry."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.orm import Session

from journals.models import IncidentJournalEntry

# Incidents the gateway opens by itself.
BREAKER_TRIPPED = "BREAKER_TRIPPED"  # a breaker switched a delivery point off
LATE_DELIVERY = "LATE_DELIVERY"  # a PUSH message still undelivered past the threshold

# The columns of Appendix 7 an administrator fills in, by the names the CLI and API use.
RECORDABLE = (
    "administrator_notified_at",
    "responsible_arrived_at",
    "delay_cause",
    "measures_taken",
    "sent_at",
    "employee_name",
    "signature",
)


@dataclass(frozen=True)
class Incident:
    """One row of the incident journal as an auditor reads it."""

    id: int
    opened_at: datetime
    kind: str
    delivery_point_id: int | None
    message_id: str | None
    message_received_at: datetime | None
    administrator_notified_at: datetime | None
    responsible_arrived_at: datetime | None
    delay_cause: str | None
    measures_taken: str | None
    sent_at: datetime | None
    employee_name: str | None
    signature: str | None
    closed_at: datetime | None


def _incident(row: IncidentJournalEntry) -> Incident:
    return Incident(**{name: getattr(row, name) for name in Incident.__dataclass_fields__})


class IncidentNotFound(LookupError):
    """No incident with that number."""


class IncidentClosed(ValueError):
    """A closed incident is part of the record and is not edited any more."""


def list_incidents(engine: Engine, open_only: bool = False, limit: int = 100, offset: int = 0) -> list[Incident]:
    """Incidents, newest first."""
    query = select(IncidentJournalEntry).order_by(IncidentJournalEntry.id.desc()).limit(limit).offset(offset)
    if open_only:
        query = query.where(IncidentJournalEntry.closed_at.is_(None))
    with Session(engine) as session:
        return [_incident(row) for row in session.scalars(query)]


def record(engine: Engine, incident_id: int, **values: object) -> Incident:
    """Fill in Appendix 7 columns (see :data:`RECORDABLE`) of an open incident."""
    unknown = set(values) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"not a column an administrator records: {', '.join(sorted(unknown))}")
    values = {name: _utc(value) if isinstance(value, datetime) else value for name, value in values.items()}
    with Session(engine) as session, session.begin():
        row = _open_row(session, incident_id)
        for name, value in values.items():
            setattr(row, name, value)
        return _incident(row)


def close(engine: Engine, incident_id: int, measures_taken: str | None = None, employee_name: str | None = None) -> Incident:
    """Close an incident, recording the measures and the employee when given."""
    with Session(engine) as session, session.begin():
        row = _open_row(session, incident_id)
        if measures_taken is not None:
            row.measures_taken = measures_taken
        if employee_name is not None:
            row.employee_name = employee_name
        row.closed_at = datetime.now(UTC)
        return _incident(row)


def _utc(moment: datetime) -> datetime:
    # Stored in UTC: SQLite keeps no zone, so a local time would come back hours off.
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()}: give the time zone")
    return moment.astimezone(UTC)


def _open_row(session: Session, incident_id: int) -> IncidentJournalEntry:
    row = session.get(IncidentJournalEntry, incident_id, with_for_update=True)
    if row is None:
        raise IncidentNotFound(f"no incident No. {incident_id}")
    if row.closed_at is not None:
        raise IncidentClosed(f"incident No. {incident_id} was closed at {row.closed_at:%Y-%m-%d %H:%M}")
    return row


def note_sent(engine: Engine, message_sent: dict[str, datetime]) -> int:
    """Record when late messages were finally sent, on their open incidents that have no sending time yet."""
    changed = 0
    with engine.begin() as connection:
        for message_id, sent_at in message_sent.items():
            changed += connection.execute(
                update(IncidentJournalEntry)
                .where(
                    IncidentJournalEntry.message_id == message_id,
                    IncidentJournalEntry.sent_at.is_(None),
                    IncidentJournalEntry.closed_at.is_(None),
                )
                .values(sent_at=sent_at)
            ).rowcount
    return changed


def open_breaker_incident(connection: Connection, delivery_point_id: int, opened_at: datetime, cause: str) -> int:
    """Open the incident of a breaker switching ``delivery_point_id`` off, within the caller's transaction; return
    its number."""
    return connection.execute(
        insert(IncidentJournalEntry)
        .values(opened_at=opened_at, kind=BREAKER_TRIPPED, delivery_point_id=delivery_point_id, delay_cause=cause[:2000])
        .returning(IncidentJournalEntry.id)
    ).scalar_one()


def close_breaker_incident(connection: Connection, incident_id: int, measures_taken: str) -> None:
    """Close a breaker's incident, its delivery point being back, within the caller's transaction. An incident the
    administrator already closed is sealed; it is not rewritten."""
    closed_at = datetime.now(UTC)
    connection.execute(
        update(IncidentJournalEntry)
        .where(IncidentJournalEntry.id == incident_id, IncidentJournalEntry.closed_at.is_(None))
        .values(measures_taken=measures_taken, closed_at=closed_at, sent_at=closed_at)
    )


@dataclass(frozen=True)
class LateMessage:
    """A PUSH message still undelivered past the threshold, as its incident records it."""

    message_id: str
    received_at: datetime
    delay_cause: str


def open_late_delivery_incidents(connection: Connection, opened_at: datetime, messages: list[LateMessage]) -> None:
    """Open one incident per late message, within the caller's transaction."""
    if messages:
        connection.execute(
            insert(IncidentJournalEntry),
            [
                {
                    "opened_at": opened_at,
                    "kind": LATE_DELIVERY,
                    "message_id": message.message_id,
                    "message_received_at": message.received_at,
                    "delay_cause": message.delay_cause,
                }
                for message in messages
            ],
        )
