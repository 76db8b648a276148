"""Reading journal rows whose stored values may have been corrupted behind the gateway's back.

A value written by hand can be one the database keeps but the driver cannot turn back into Python: on SQLite
any text in a datetime or JSON column, or bytes that are not UTF-8 in a text column; on PostgreSQL a timestamp
outside Python's years 1 to 9999 (``infinity``, ``20000-01-01``, a BC date). Such a value makes the whole fetch
fail. :func:`read_rows` reads rows as usual and, when a fetch fails on a value, reads that stretch again one row
at a time, so each unreadable row comes out on its own, with the columns that cannot be read, and the read goes
on after it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, and_, or_, select
from sqlalchemy.exc import DataError, OperationalError

BATCH = 1000
_REASON_CHARS = 120
# sqlite3's own message for text that is not UTF-8: the one OperationalError that is about a value, not the database.
_SQLITE_UNDECODABLE = "Could not decode to UTF-8"


def is_decode_error(error: BaseException) -> bool:
    """Whether ``error`` means a stored value cannot be turned into Python (rather than a failing database)."""
    if isinstance(error, DataError):
        return True  # psycopg: a value its loaders refuse (PostgreSQL itself checked it on the way in)
    if isinstance(error, OperationalError):
        return _SQLITE_UNDECODABLE in str(error.orig)
    # SQLAlchemy's own result processors (SQLite datetimes, JSON) raise these unwrapped.
    return isinstance(error, ValueError | TypeError | OverflowError)


def reason(error: BaseException) -> str:
    """A short account of ``error`` for a report (the driver's message without the SQL statement)."""
    message = (str(getattr(error, "orig", None) or error) or type(error).__name__).splitlines()[0]
    return message if len(message) <= _REASON_CHARS else message[: _REASON_CHARS - 1] + "…"


@dataclass(frozen=True)
class StoredRow:
    """A row as stored: its ``key`` (the ordering columns' values) and either its ``values`` or, when some cannot
    be read, ``problem`` naming those columns."""

    key: tuple[Any, ...]
    values: Mapping[str, Any] | None
    problem: str | None = None


def _after(keys: Sequence[Column[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in ``keys`` order (a row-value comparison spelled out for every database)."""
    first, rest = keys[0], keys[1:]
    if not rest:
        return first > values[0]
    return or_(first > values[0], and_(first == values[0], _after(rest, values[1:])))


def read_rows(
    connection: Connection, statement: Select[Any], keys: Sequence[Column[Any]], limit: int | None = None
) -> Iterator[StoredRow]:
    """The first ``limit`` (default all) rows of ``statement`` (a select of one table's columns, possibly
    filtered) in ``keys`` order (unique together), each as a :class:`StoredRow`: unreadable ones included, their
    errors never raised."""
    after: tuple[Any, ...] | None = None
    left = limit
    def remaining() -> Select[Any]:
        return (statement if after is None else statement.where(_after(keys, after))).order_by(*keys)

    while left is None or left > 0:
        try:
            # Streamed in batches (a server-side cursor on PostgreSQL): bounded memory for a journal of any size.
            for row in connection.execute(remaining().limit(left), execution_options={"yield_per": BATCH}).mappings():
                after = tuple(row[key.name] for key in keys)
                left = None if left is None else left - 1
                yield StoredRow(after, row)
            return
        except Exception as error:
            if not is_decode_error(error):
                raise
        # A row of the next batch cannot be read: find it by reading that batch row by row.
        size = BATCH if left is None else min(BATCH, left)
        batch = [tuple(key) for key in connection.execute(remaining().with_only_columns(*keys).limit(size))]
        if not batch:
            return
        for key in batch:
            if (stored := _read_one(connection, statement, keys, key)) is not None:
                yield stored
        after = batch[-1]
        left = None if left is None else left - len(batch)


def _read_one(
    connection: Connection, statement: Select[Any], keys: Sequence[Column[Any]], key: tuple[Any, ...]
) -> StoredRow | None:
    where = and_(*(column == value for column, value in zip(keys, key, strict=True)))
    try:
        values = connection.execute(statement.where(where)).mappings().one_or_none()
        return None if values is None else StoredRow(key, values)  # None: deleted since its key was read
    except Exception as error:
        if not is_decode_error(error):
            raise
    unreadable = []
    for column in statement.selected_columns:
        try:
            connection.execute(select(column).where(where)).all()
        except Exception as error:
            if not is_decode_error(error):
                raise
            unreadable.append(f"{column.name} ({reason(error)})")
    return StoredRow(key, None, "cannot read " + ", ".join(unreadable or ["the row"]))
