"""Deliveries late past the threshold open an incident (gateway-rules.md §2.7, §6.3): a PUSH message the gateway
still has not delivered ``late_delivery_seconds`` after accepting it. A message that is then delivered gets its
sending time recorded on the incident; closing it stays the administrator's act."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.store.late import delivered_since_late, undelivered_push_messages
from journals import incidents

BATCH = 500  # incidents opened per run at most; the next run takes the rest


def open_late_delivery_incidents(engine: Engine, threshold_seconds: float) -> int:
    """Open an incident for each PUSH message undelivered past the threshold that has none yet; return how many."""
    clock = datetime.now(UTC)
    with engine.begin() as connection:
        rows = undelivered_push_messages(connection, clock - timedelta(seconds=threshold_seconds), BATCH)
        incidents.open_late_delivery_incidents(
            connection,
            clock,
            [
                incidents.LateMessage(message_id, accepted_at, f"not delivered to {recipient} within {threshold_seconds:.0f} s")
                for message_id, accepted_at, recipient in rows
            ],
        )
    return len(rows)


def record_late_deliveries_sent(engine: Engine) -> int:
    """Put the delivery time of late messages that have since been delivered on their open incidents."""
    with engine.connect() as connection:
        delivered = delivered_since_late(connection, BATCH)
    return incidents.note_sent(engine, delivered) if delivered else 0


def check_late_deliveries(engine: Engine, threshold_seconds: float) -> None:
    """The scheduled job: open incidents for late deliveries and note the ones since delivered."""
    open_late_delivery_incidents(engine, threshold_seconds)
    record_late_deliveries_sent(engine)
