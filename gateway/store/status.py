"""The one statement ``GET /health`` reads the database-derived status with (``gateway/health.py``)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, cast, func, literal_column, null, select, type_coerce, union_all
from sqlalchemy.sql.elements import Null

from gateway.store.messages import PENDING
from gateway.store.models import DeliveryPointState, DeliveryTask, MaintenanceMode


def status_statement(maintenance_row: int) -> Any:
    """One UNION ALL of rows (kind, number, flag, text, at): the queue depth ("queue": the pending tasks), the
    maintenance row ``maintenance_row`` ("maintenance": on, reason, changed at), each delivery point's state
    ("point": its id, switched off, probe after)."""

    def row(kind: str, number: Any, flag: Any, text: Any, at: Any) -> Any:
        # Inline literals and typed NULLs: PostgreSQL cannot type bare parameters in a UNION's select list.
        return select(
            literal_column(f"'{kind}'", String).label("kind"),
            _typed(number, Integer()).label("number"),
            _typed(flag, Boolean()).label("flag"),
            _typed(text, String()).label("text"),
            _typed(at, DateTime(timezone=True)).label("at"),
        )

    queue = row("queue", func.count(), null(), null(), null()).select_from(DeliveryTask).where(DeliveryTask.state == PENDING)
    maintenance = row(
        "maintenance", null(), MaintenanceMode.enabled, MaintenanceMode.reason, MaintenanceMode.changed_at
    ).where(MaintenanceMode.id == maintenance_row)
    points = row(
        "point", DeliveryPointState.delivery_point_id, DeliveryPointState.switched_off, null(), DeliveryPointState.probe_after
    )
    return union_all(queue, maintenance, points)


def _typed(value: Any, type_: Any) -> Any:
    # A NULL slot is CAST so PostgreSQL knows its type; a column only gets the Python-side type, since SQLite's
    # CAST(... AS DATETIME) would turn a stored timestamp into a number.
    return cast(value, type_) if isinstance(value, Null) else type_coerce(value, type_)
