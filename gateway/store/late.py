"""The store's queries behind late-delivery incidents: PUSH messages still undelivered past a threshold, and late
ones since delivered whose incident does not have their sending time yet."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, and_, select

from gateway.store.messages import DELIVERED, ON_DELIVERY
from gateway.store.models import AsyncMessage
from journals.incidents import LATE_DELIVERY
from journals.models import IncidentJournalEntry


def undelivered_push_messages(connection: Connection, accepted_before: datetime, limit: int) -> list[Row[tuple[str, datetime, str]]]:
    """(message id, accepted at, recipient) of PUSH messages on delivery since before ``accepted_before`` that have
    no late-delivery incident yet, oldest first, at most ``limit``."""
    # NOT IN over a NULL matches nothing: incidents without a message must stay out of the subquery.
    already = select(IncidentJournalEntry.message_id).where(
        IncidentJournalEntry.kind == LATE_DELIVERY, IncidentJournalEntry.message_id.is_not(None)
    )
    late = (
        select(AsyncMessage.message_id, AsyncMessage.accepted_at, AsyncMessage.recipient_id)
        .where(
            AsyncMessage.delivery_mode == "PUSH",
            AsyncMessage.state == ON_DELIVERY,
            AsyncMessage.accepted_at < accepted_before,
            AsyncMessage.message_id.not_in(already),
        )
        .order_by(AsyncMessage.accepted_at)
        .limit(limit)
    )
    return list(connection.execute(late).all())


def delivered_since_late(connection: Connection, limit: int) -> dict[str, datetime]:
    """Messages delivered since their open late-delivery incident was opened that records no sending time yet,
    with when they were delivered; at most ``limit``."""
    pending = (
        select(AsyncMessage.message_id, AsyncMessage.state_changed_at)
        .join(IncidentJournalEntry, and_(IncidentJournalEntry.message_id == AsyncMessage.message_id))
        .where(
            IncidentJournalEntry.kind == LATE_DELIVERY,
            IncidentJournalEntry.sent_at.is_(None),
            IncidentJournalEntry.closed_at.is_(None),
            AsyncMessage.state == DELIVERED,
        )
        .limit(limit)
    )
    return {message_id: sent_at for message_id, sent_at in connection.execute(pending)}
