"""Deliveries late past the threshold open an incident (gateway-rules.md §2.7, §6.3): a PUSH message the gateway
still has not delivered ``late_delivery_seconds`` after accepting it. A message that is then delivered gets its
sending time recorded on the incident; closing it stays the administrator's act."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, insert, select

from gateway.store.messages import DELIVERED, ON_DELIVERY
from gateway.store.models import AsyncMessage
from journals.incidents import note_sent
from journals.models import IncidentJournalEntry

LATE_DELIVERY = "LATE_DELIVERY"
BATCH = 500  # incidents opened per run at most; the next run takes the rest


def open_late_delivery_incidents(engine: Engine, threshold_seconds: float) -> int:
    """Open an incident for each PUSH message undelivered past the threshold that has none yet; return how many."""
    clock = datetime.now(UTC)
    # NOT IN over a NULL matches nothing: incidents without a message must stay out of the subquery.
    already = select(IncidentJournalEntry.message_id).where(
        IncidentJournalEntry.kind == LATE_DELIVERY, IncidentJournalEntry.message_id.is_not(None)
    )
    late = (
        select(AsyncMessage.message_id, AsyncMessage.accepted_at, AsyncMessage.recipient_id)
        .where(
            AsyncMessage.delivery_mode == "PUSH",
            AsyncMessage.state == ON_DELIVERY,
            AsyncMessage.accepted_at < clock - timedelta(seconds=threshold_seconds),
            AsyncMessage.message_id.not_in(already),
        )
        .order_by(AsyncMessage.accepted_at)
        .limit(BATCH)
    )
    with engine.begin() as connection:
        rows = connection.execute(late).all()
        if rows:
            connection.execute(
                insert(IncidentJournalEntry),
                [
                    {
                        "opened_at": clock,
                        "kind": LATE_DELIVERY,
                        "message_id": message_id,
                        "message_received_at": accepted_at,
                        "delay_cause": f"not delivered to {recipient} within {threshold_seconds:.0f} s",
                    }
                    for message_id, accepted_at, recipient in rows
                ],
            )
    return len(rows)


def record_late_deliveries_sent(engine: Engine) -> int:
    """Put the delivery time of late messages that have since been delivered on their open incidents."""
    pending = (
        select(AsyncMessage.message_id, AsyncMessage.state_changed_at)
        .join(IncidentJournalEntry, and_(IncidentJournalEntry.message_id == AsyncMessage.message_id))
        .where(
            IncidentJournalEntry.kind == LATE_DELIVERY,
            IncidentJournalEntry.sent_at.is_(None),
            IncidentJournalEntry.closed_at.is_(None),
            AsyncMessage.state == DELIVERED,
        )
        .limit(BATCH)
    )
    with engine.connect() as connection:
        delivered = {message_id: sent_at for message_id, sent_at in connection.execute(pending)}
    return note_sent(engine, delivered) if delivered else 0


def check_late_deliveries(engine: Engine, threshold_seconds: float) -> None:
    """The scheduled job: open incidents for late deliveries and note the ones since delivered."""
    open_late_delivery_incidents(engine, threshold_seconds)
    record_late_deliveries_sent(engine)
