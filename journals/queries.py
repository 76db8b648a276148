"""Reading the journals for auditors: filtered, paged queries of the logging journal, the audit log and the
registration journal, and CSV/JSON export. Independent of HTTP, so the admin API and the CLI share it.

Paging is by id (keyset): a page returns ``next_after``, the id to pass as ``after_id`` for the next page, so
paging stays cheap while new rows are appended. On PostgreSQL, rows being committed by concurrent processes may
take ids below one already returned; an audit of a closed time range (``to`` in the past) is not affected.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Select, and_, or_, select

from journals.audit import AuditLogEntry, RegistrationJournalEntry
from journals.models import LoggingJournalEntry
from journals.stored import read_rows
from journals.times import as_utc, iso_utc

MAX_PAGE = 1000
EXPORT_BATCH = 1000
_LOGGING = LoggingJournalEntry.__table__
_AUDIT = AuditLogEntry.__table__
_REGISTRATION = RegistrationJournalEntry.__table__


class JournalUnreadable(Exception):
    """A stored journal row that cannot be read back (a value corrupted in the database); names the row."""


@dataclass(frozen=True)
class LoggingQuery:
    """Filters of the logging journal; the time range is on the receipt time (sending time for rows without
    one), ``since`` inclusive, ``until`` exclusive."""

    message_id: str | None = None
    correlation_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    service_id: str | None = None
    state: str | None = None
    channel: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Page:
    """One page of rows (dicts of column values) and the id to continue after, if more may follow."""

    rows: list[dict[str, Any]]
    next_after: int | None


def _in_range(column: Any, since: datetime | None, until: datetime | None) -> Any:
    conditions = []
    if since is not None:
        conditions.append(column >= as_utc(since))
    if until is not None:
        conditions.append(column < as_utc(until))
    return and_(*conditions)


def _logging_select(query: LoggingQuery) -> Select[Any]:
    table = _LOGGING.c
    statement = select(_LOGGING)
    for attribute in ("message_id", "correlation_id", "sender", "recipient", "service_id", "state", "channel", "session_id"):
        value = getattr(query, attribute)
        if value is not None:
            statement = statement.where(table[attribute] == value)
    if query.since is not None or query.until is not None:
        statement = statement.where(or_(
            _in_range(table.received_at, query.since, query.until),
            and_(table.received_at.is_(None), _in_range(table.sent_at, query.since, query.until)),
        ))
    return statement


def _value(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


def _page(engine: Engine, statement: Select[Any], id_column: Column[Any], after_id: int | None, limit: int) -> Page:
    """Up to ``limit`` rows after ``after_id``; :class:`JournalUnreadable` names the first row on it that cannot be
    read back, rather than failing somewhere in the driver."""
    limit = max(1, min(limit, MAX_PAGE))
    if after_id is not None:
        statement = statement.where(id_column > after_id)
    rows = []
    with engine.connect() as connection:
        for stored in read_rows(connection, statement, [id_column], limit + 1):
            if stored.values is None:
                raise JournalUnreadable(f"{id_column.table.name} row id {stored.key[0]}: {stored.problem}; "
                                        "'gateway journals verify' reports every such row")
            rows.append({name: _value(value) for name, value in stored.values.items()})
    more = len(rows) > limit
    return Page(rows[:limit], rows[limit - 1]["id"] if more else None)


def query_logging(engine: Engine, query: LoggingQuery, after_id: int | None = None, limit: int = 100) -> Page:
    """One page of logging-journal rows matching ``query``, in id order."""
    return _page(engine, _logging_select(query), _LOGGING.c.id, after_id, limit)


def iter_logging(engine: Engine, query: LoggingQuery) -> Iterator[dict[str, Any]]:
    """Every matching logging-journal row, read page by page (bounded memory for any export size)."""
    after: int | None = None
    while True:
        page = query_logging(engine, query, after, EXPORT_BATCH)
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after


def query_audit(
    engine: Engine, entity: str | None = None, key: str | None = None, actor: str | None = None,
    after_id: int | None = None, limit: int = 100,
) -> Page:
    """One page of audit-log rows, optionally of one entity kind, key or actor."""
    statement = select(_AUDIT)
    for column, value in ((_AUDIT.c.entity, entity), (_AUDIT.c.entity_key, key), (_AUDIT.c.actor, actor)):
        if value is not None:
            statement = statement.where(column == value)
    return _page(engine, statement, _AUDIT.c.id, after_id, limit)


def query_registration(engine: Engine, service: str | None = None, after_id: int | None = None, limit: int = 100) -> Page:
    """One page of the IS interaction registration journal, optionally of one service."""
    statement = select(_REGISTRATION)
    if service is not None:
        statement = statement.where(_REGISTRATION.c.service == service)
    return _page(engine, statement, _REGISTRATION.c.id, after_id, limit)


LOGGING_COLUMNS = [column.name for column in _LOGGING.columns]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """Callers choose message ids and the like: a cell a spreadsheet would run as a formula is quoted."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def csv_chunks(rows: Iterable[dict[str, Any]], columns: list[str] = LOGGING_COLUMNS) -> Iterator[str]:
    """``rows`` as CSV text with a header line, in chunks of up to ``EXPORT_BATCH`` rows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for count, row in enumerate(rows, 1):
        writer.writerow({key: _inert(value) for key, value in row.items()})
        if count % EXPORT_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """``rows`` as one JSON array, written row by row. The opening bracket goes with the first row, so a first
    chunk made before answering has read the journal: reading it fails before a single byte is sent."""
    separator = "["
    for row in rows:
        yield separator + "\n" + json.dumps(row, ensure_ascii=False)
        separator = ","
    yield ("[" if separator == "[" else "") + "\n]\n"
