"""Maintenance mode: one switch in the database, so every gateway process (gunicorn workers, other machines)
agrees at once. While it is on, ``GET /health`` answers 503 and load balancers stop sending traffic; the
channels themselves keep serving whatever still reaches them, so no exchange in flight is cut off.

Every switch is written to the audit log (journals/audit.py) in the same transaction, with who switched it
(an admin API token's name, or ``cli:<user>`` from the command line) and the state before and after.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.orm import Session

from gateway.store.models import MaintenanceMode
from journals.audit import record_change
from journals.times import as_utc, iso_utc

MAINTENANCE_ROW = 1
MAX_REASON = 1000
AUDIT_ENTITY = "maintenance"


@dataclass(frozen=True)
class MaintenanceState:
    """Whether maintenance mode is on, why, since when and who switched it."""

    enabled: bool
    reason: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None

    def as_json(self) -> dict[str, object]:
        """The JSON view used by the health report, the admin API and the CLI."""
        return {
            "on": self.enabled,
            "reason": self.reason,
            "changed_at": iso_utc(self.changed_at),
            "changed_by": self.changed_by,
        }


def read_maintenance(connection: Connection) -> MaintenanceState:
    """The current switch (off when the row is missing, e.g. on a database migrated by hand)."""
    row = connection.execute(
        select(MaintenanceMode.enabled, MaintenanceMode.reason, MaintenanceMode.changed_at, MaintenanceMode.changed_by)
        .where(MaintenanceMode.id == MAINTENANCE_ROW)
    ).one_or_none()
    if row is None:
        return MaintenanceState(False)
    changed_at = as_utc(row.changed_at) if row.changed_at is not None else None
    return MaintenanceState(bool(row.enabled), row.reason, changed_at, row.changed_by)


def maintenance_state(engine: Engine) -> MaintenanceState:
    """The current switch, read in its own connection."""
    with engine.connect() as connection:
        return read_maintenance(connection)


def set_maintenance(engine: Engine, enabled: bool, changed_by: str, reason: str | None = None) -> tuple[MaintenanceState, MaintenanceState]:
    """Switch maintenance mode on or off; returns (before, after). Switching off clears the reason."""
    after = MaintenanceState(
        enabled=enabled,
        reason=reason[:MAX_REASON] if enabled and reason else None,
        changed_at=datetime.now(UTC),
        changed_by=changed_by[:200],
    )
    values = {"enabled": after.enabled, "reason": after.reason, "changed_at": after.changed_at, "changed_by": after.changed_by}
    with Session(engine) as session, session.begin():
        connection = session.connection()
        before = read_maintenance(connection)
        table = MaintenanceMode.__table__
        if not connection.execute(update(table).where(table.c.id == MAINTENANCE_ROW).values(**values)).rowcount:
            connection.execute(insert(table).values(id=MAINTENANCE_ROW, **values))
        # The switch and its audit row are committed together or not at all.
        record_change(session, changed_by, "UPDATE", AUDIT_ENTITY, "maintenance", before.as_json(), after.as_json())
    return before, after
