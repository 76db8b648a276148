"""The delivery points' shared state (throttle calls, breaker failures, switched off), every query in one place.

Reading a point's state for a decision first locks its row (a no-op UPDATE takes the row lock on PostgreSQL and
the write lock on SQLite), so concurrent workers see each other's calls and failures; the policy that decides
on it is ``gateway/delivery/guard.py``'s.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store.models import DeliveryPointState


class DeliveryPointStates:
    """Reads and writes the ``delivery_point_state`` rows every worker process agrees on."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction for a decision: lock the state, decide, write it back."""
        return self._engine.begin()

    @staticmethod
    def locked(connection: Connection, point_id: int) -> DeliveryPointState:
        """The point's state row, locked until the caller's transaction ends (created on first use)."""
        table = DeliveryPointState.__table__
        lock = update(table).where(table.c.delivery_point_id == point_id).values(delivery_point_id=table.c.delivery_point_id)
        if not connection.execute(lock).rowcount:
            # First use of this point: create its row; a concurrent creator may win, which is as good.
            dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            connection.execute(
                dialect_insert(table)
                .values(delivery_point_id=point_id, recent_calls=[], recent_failures=[], switched_off=False)
                .on_conflict_do_nothing()
            )
            connection.execute(lock)
        return connection.execute(select(table).where(table.c.delivery_point_id == point_id)).one()

    @staticmethod
    def record_calls(connection: Connection, point_id: int, recent_calls: list[float]) -> None:
        """Keep the start times of the point's recent calls (the throttle's window)."""
        _write(connection, point_id, recent_calls=recent_calls)

    @staticmethod
    def record_failures(
        connection: Connection,
        point_id: int,
        recent_failures: list[float],
        switched_off_at: datetime | None = None,
        probe_after: datetime | None = None,
        incident_id: int | None = None,
    ) -> None:
        """Keep the times of the point's recent failures; with ``switched_off_at``, switch the point off too,
        probed after ``probe_after`` (None: only an administrator brings it back), under ``incident_id``."""
        values: dict[str, object] = {"recent_failures": recent_failures}
        if switched_off_at is not None:
            values.update(switched_off=True, switched_off_at=switched_off_at, probe_after=probe_after, incident_id=incident_id)
        _write(connection, point_id, **values)

    @staticmethod
    def switch_on(connection: Connection, point_id: int) -> None:
        """The point is back: on, with no failures counted and no incident."""
        _write(connection, point_id, switched_off=False, switched_off_at=None, probe_after=None, recent_failures=[], incident_id=None)

    @staticmethod
    def postpone_probe(connection: Connection, point_id: int, probe_after: datetime) -> None:
        """The switched-off point is to be probed again after ``probe_after``."""
        _write(connection, point_id, probe_after=probe_after)

    def switched_off(self) -> dict[int, datetime | None]:
        """Switched-off points and when each may be probed (None: only an administrator brings it back)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(DeliveryPointState.delivery_point_id, DeliveryPointState.probe_after).where(
                    DeliveryPointState.switched_off.is_(True)
                )
            )
            return {point_id: probe_after for point_id, probe_after in rows}


def _write(connection: Connection, point_id: int, **values: object) -> None:
    connection.execute(
        update(DeliveryPointState.__table__).where(DeliveryPointState.delivery_point_id == point_id).values(**values)
    )
