"""Times as the database keeps them: UTC. SQLite hands datetimes back without their zone, PostgreSQL in the
session's zone; everything that reads a stored time goes through :func:`as_utc`."""
from __future__ import annotations

from datetime import UTC, datetime


class OutOfRange(ValueError):
    """A time that exists in its own zone but not in UTC (year 1 ahead of UTC, year 9999 behind it)."""


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is a stored UTC time."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC like :func:`as_utc`, or :class:`OutOfRange` when UTC's calendar cannot hold it."""
    try:
        return as_utc(value)
    except OverflowError:
        raise OutOfRange("must lie between 0001-01-01 and 9999-12-31 once in UTC "
                         f"({value.isoformat()} does not)") from None


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, for JSON answers and reports."""
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None
