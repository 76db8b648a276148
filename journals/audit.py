"""The audit log (who changed what in the registry and its access tokens, with before and after) and the IS
interaction registration journal (gateway-rules.md §6.1, Appendix 2), with their writers.

Both are written by the caller inside the transaction that makes the change, so a change and its record are
committed together or not at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from journals.models import BIG_ID, ChainedRow, JournalBase, unsealed_index


# Keys that never reach the audit log, whatever entity a before/after snapshot comes from.
SECRET_KEYS = frozenset({"password", "passwordHash", "password_hash", "token", "tokenHash", "token_hash"})


class AuditLogEntry(ChainedRow, JournalBase):
    """One administrative change: who (token name or CLI user), when, what, and the entity before and after."""

    __tablename__ = "journal_audit"
    __table_args__ = (unsealed_index("journal_audit"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    operation: Mapped[str] = mapped_column(String(32))  # CREATE, UPDATE, DELETE, ADD_USER, REMOVE_USER, ...
    entity: Mapped[str] = mapped_column(String(40))  # organisations, services, tokens, ...
    entity_key: Mapped[str] = mapped_column(String(300), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RegistrationJournalEntry(ChainedRow, JournalBase):
    """A row of the IS interaction registration journal (Appendix 2): a service published, or a user IS
    connected to a service. ``id`` is the row number (column 1)."""

    __tablename__ = "journal_registration"
    __table_args__ = (unsealed_index("journal_registration"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    event: Mapped[str] = mapped_column(String(32))  # SERVICE_PUBLISHED or USER_CONNECTED
    actor: Mapped[str] = mapped_column(String(200))
    owner_organisation: Mapped[str] = mapped_column(String(500))  # 2: service owner organisation
    owner_information_system: Mapped[str] = mapped_column(String(500))  # 3: the owner's IS
    service: Mapped[str] = mapped_column(String(200), index=True)  # 4: the service key (serviceId)
    service_name: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, default="")  # 5
    user_organisation: Mapped[str | None] = mapped_column(String(500))  # 6
    user_information_system: Mapped[str | None] = mapped_column(String(500))  # 7
    user_sender_id: Mapped[str | None] = mapped_column(String(200))
    publication_basis: Mapped[str | None] = mapped_column(String(1000))  # 8
    connection_basis: Mapped[str | None] = mapped_column(String(1000))  # 9


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def record_change(
    session: Session,
    actor: str,
    operation: str,
    entity: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditLogEntry:
    """Add an audit row to ``session`` (committed with the change); secrets are stripped from both snapshots."""
    row = AuditLogEntry(
        at=datetime.now(UTC), actor=actor, operation=operation, entity=entity, entity_key=key,
        before=_without_secrets(before), after=_without_secrets(after),
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Registration:
    """What Appendix 2 records of a publication or a connection."""

    event: str
    owner_organisation: str
    owner_information_system: str
    service: str
    service_name: str
    description: str
    publication_basis: str | None
    user_organisation: str | None = None
    user_information_system: str | None = None
    user_sender_id: str | None = None
    connection_basis: str | None = None


def record_registration(session: Session, actor: str, registration: Registration) -> RegistrationJournalEntry:
    """Add a registration journal row to ``session`` (committed with the change that caused it)."""
    row = RegistrationJournalEntry(recorded_at=datetime.now(UTC), actor=actor, **registration.__dict__)
    session.add(row)
    return row
