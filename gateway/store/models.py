"""Tables of the asynchronous channel, owned by the gateway room."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.models import NAMING_CONVENTION

BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class GatewayBase(DeclarativeBase):
    """Base of the gateway room's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AsyncMessage(GatewayBase):
    """A message accepted on the asynchronous channel, from acceptance to its final state."""

    __tablename__ = "async_message"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    correlation_id: Mapped[str] = mapped_column(String(200), index=True)
    service_id: Mapped[str] = mapped_column(String(200))
    message_type: Mapped[str] = mapped_column(String(16))
    route_id: Mapped[str | None] = mapped_column(String(200))
    message_date: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(String(200))
    recipient_id: Mapped[str] = mapped_column(String(200))
    properties: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    data: Mapped[str] = mapped_column(Text)  # the ``data`` element as received, serialised
    delivery_mode: Mapped[str] = mapped_column(String(8))  # PUSH or PULL
    state: Mapped[str] = mapped_column(String(20))  # MessageState
    fetched: Mapped[bool] = mapped_column(Boolean, default=False)  # PULL: returned by getMessages
    receive_status: Mapped[str | None] = mapped_column(String(32))  # from sendDeliveryNotification
    session_id: Mapped[str] = mapped_column(String(40))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (Index("ix_async_message_pull", "recipient_id", "service_id", "delivery_mode", "fetched", "id"),)


class DeliveryTask(GatewayBase):
    """One outbound call owed to a recipient: a PUSH delivery or a status notification, with its retries."""

    __tablename__ = "delivery_task"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # MESSAGE or STATUS
    message_id: Mapped[str] = mapped_column(ForeignKey("async_message.message_id"), index=True)
    delivery_point_id: Mapped[int] = mapped_column(Integer, index=True)
    notified_state: Mapped[str | None] = mapped_column(String(20))  # STATUS: the state being announced
    state: Mapped[str] = mapped_column(String(16))  # PENDING, DONE, FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # POLL tasks: what the adapter needs to ask its backend again for a result still pending.
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_delivery_task_due", "state", "next_attempt_at"),)


class DeliveryPointState(GatewayBase):
    """What every worker process must agree on about one delivery point: recent calls (throttle), recent
    failures (breaker) and whether the breaker has switched it off."""

    __tablename__ = "delivery_point_state"

    delivery_point_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recent_calls: Mapped[list[float]] = mapped_column(JSON, default=list)  # epoch seconds, newest last
    recent_failures: Mapped[list[float]] = mapped_column(JSON, default=list)
    switched_off: Mapped[bool] = mapped_column(Boolean, default=False)
    switched_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    probe_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    incident_id: Mapped[int | None] = mapped_column(BIG_ID)


class SeenSignature(GatewayBase):
    """Transport signatures (and signed sender/messageId pairs) seen recently, so a replay is refused by every
    gateway process alike."""

    __tablename__ = "security_seen_signature"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AdminToken(GatewayBase):
    """An admin API token: only its SHA-256 is kept; revoked tokens stay listed so the audit log's names resolve."""

    __tablename__ = "admin_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # administrator or auditor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaintenanceMode(GatewayBase):
    """The one-row maintenance switch every gateway process reads: while on, ``GET /health`` answers 503 so that
    load balancers drain the gateway. Kept in the database because several processes must agree."""

    __tablename__ = "gateway_maintenance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(1000))
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[str | None] = mapped_column(String(200))
