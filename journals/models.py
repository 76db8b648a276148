"""Journal tables, owned by this room and its own metadata (gateway-rules.md §6)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, Index, Integer, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.models import NAMING_CONVENTION


class JournalBase(DeclarativeBase):
    """Base of every journal table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


BIG_ID = BigInteger().with_variant(Integer, "sqlite")
UNSEALED = text("seq IS NULL")


class ChainedRow:
    """The hash-chain columns of a sealed journal (journals/seal.py): NULL until the sealer reaches the row, then
    its place in the chain (1, 2, 3… per table) and SHA-256 of the previous hash and the row's content."""

    seq: Mapped[int | None] = mapped_column(BigInteger)
    chain_hash: Mapped[str | None] = mapped_column(String(64))


def unsealed_index(table_name: str) -> Index:
    """A partial index of the rows the sealer has not reached yet: small, so finding them stays cheap."""
    return Index(f"ix_{table_name}_unsealed", "id", postgresql_where=UNSEALED, sqlite_where=UNSEALED)


class LoggingJournalEntry(ChainedRow, JournalBase):
    """One received or sent message (Appendix 6), plus what an auditor needs to follow an exchange."""

    __tablename__ = "journal_logging"
    __table_args__ = (unsealed_index("journal_logging"),)

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


class IncidentJournalEntry(ChainedRow, JournalBase):
    """An incident (Appendix 7): the ten columns of the form, plus what opened it and when it was closed. Only
    closed incidents are sealed: an open one is still being filled in by an administrator."""

    __tablename__ = "journal_incident"
    __table_args__ = (unsealed_index("journal_incident"),)

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


class JournalCheckpoint(JournalBase):
    """A signed statement that a journal's chain reached ``last_seq`` with ``last_hash``. SEAL: written with each
    sealed batch (rows ``first_seq``..``last_seq``). ARCHIVE: rows up to ``last_seq`` moved to the file
    ``archive_name`` (SHA-256 ``archive_sha256``); the chain in the database starts after it."""

    __tablename__ = "journal_checkpoint"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # SEAL or ARCHIVE
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))  # ISO 8601 UTC, exactly as signed
    archive_name: Mapped[str | None] = mapped_column(String(300))
    archive_sha256: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)  # base64
    certificate: Mapped[str] = mapped_column(Text)  # PEM of the signing certificate


class JournalChainHead(JournalBase):
    """Where each journal's chain stands: the sealer's starting point, and the row sealers and archivers lock so
    that only one of them extends a chain at a time. Not evidence itself: verification recomputes everything."""

    __tablename__ = "journal_chain_head"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
