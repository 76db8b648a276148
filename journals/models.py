"""Journal tables, owned by this room and its own metadata (gateway-rules.md §6)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.models import NAMING_CONVENTION


class JournalBase(DeclarativeBase):
    """Base of every journal table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LoggingJournalEntry(JournalBase):
    """One received or sent message (Appendix 6), plus what an auditor needs to follow an exchange."""

    __tablename__ = "journal_logging"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # SYNC or ASYNC
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_type: Mapped[str | None] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(200), index=True)
    recipient: Mapped[str | None] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(20))
    service_id: Mapped[str | None] = mapped_column(String(200), index=True)
    route_id: Mapped[str | None] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(40), index=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    duration_ms: Mapped[float | None] = mapped_column(Float)


class IncidentJournalEntry(JournalBase):
    """An incident (Appendix 7): the ten columns of the form, plus what opened it and when it was closed."""

    __tablename__ = "journal_incident"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)  # No.
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # Date
    kind: Mapped[str] = mapped_column(String(32))  # BREAKER_TRIPPED, ...
    delivery_point_id: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(200))
    message_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    administrator_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responsible_arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delay_cause: Mapped[str | None] = mapped_column(String(2000))
    measures_taken: Mapped[str | None] = mapped_column(String(2000))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    employee_name: Mapped[str | None] = mapped_column(String(300))
    signature: Mapped[str | None] = mapped_column(String(300))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
