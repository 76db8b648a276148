"""Registry tables (gateway-rules.md §5.4), owned by this room and its own metadata."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# An extension of §5.4: how many calls a delivery point gets at once from one gateway process, unless set.
DEFAULT_MAX_CONCURRENT_CALLS = 8

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class RegistryBase(DeclarativeBase):
    """Base of every registry table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Organisation(RegistryBase):
    """A legal entity owning information systems; its BIN binds transport-signature certificates to it."""

    __tablename__ = "registry_organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    bin: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    short_name: Mapped[str] = mapped_column(String(200))

    information_systems: Mapped[list[InformationSystem]] = relationship(back_populates="organisation")


class DeliveryPoint(RegistryBase):
    """A delivery address with its delivery parameters ("Адреса доставки")."""

    __tablename__ = "registry_delivery_point"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    url: Mapped[str | None] = mapped_column(String(1000))  # a SOAP endpoint, or None for an adapter
    adapter_name: Mapped[str | None] = mapped_column(String(50))  # a back-office adapter instead of a SOAP URL
    adapter_options: Mapped[dict[str, str] | None] = mapped_column(JSON)  # ${ENV} references, never secrets
    call_mode: Mapped[int] = mapped_column(Integer)  # 1 synchronous, 2 asynchronous
    throttling_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    throttling_timeout_sec: Mapped[int | None] = mapped_column(Integer)
    throttling_request_count: Mapped[int | None] = mapped_column(Integer)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    async_call_timeout_sec: Mapped[int | None] = mapped_column(Integer)
    max_errors: Mapped[int | None] = mapped_column(Integer)
    max_error_interval_sec: Mapped[int | None] = mapped_column(Integer)
    security_mode: Mapped[int] = mapped_column(Integer, default=0)  # 0 none, 1 gateway, 2 +caller, 3 +encryption
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Calls in flight to this point per gateway process (a bulkhead, gateway/delivery/bulkhead.py).
    max_concurrent_calls: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_CONCURRENT_CALLS)
    # What the gateway signs forwarded requests and PUSHes to this point with when it holds both keys: RSA or GOST.
    signature_algorithm: Mapped[str] = mapped_column(String(8), default="RSA")
    # PEM certificates of the CAs its HTTPS server must chain to; empty: the gateway's provider trust.
    tls_trusted_certificates: Mapped[list[str]] = mapped_column(JSON, default=list)


class InformationSystem(RegistryBase):
    """An information system; ``sender_id`` is the login it uses on the wire (``sender/senderId``)."""

    __tablename__ = "registry_information_system"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(500))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("registry_organisation.id"))
    short_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    availability_mode: Mapped[str | None] = mapped_column(String(20))
    response_delivery_point_id: Mapped[int | None] = mapped_column(ForeignKey("registry_delivery_point.id"))
    operator_name: Mapped[str | None] = mapped_column(String(500))
    operator_short_name: Mapped[str | None] = mapped_column(String(200))
    operations_unit: Mapped[str | None] = mapped_column(String(500))
    head_of_operations_unit: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    responsible_official: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    developer_contact: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    organisation: Mapped[Organisation] = relationship(back_populates="information_systems")
    certificates: Mapped[list[Certificate]] = relationship(cascade="all, delete-orphan", order_by="Certificate.id")


class Certificate(RegistryBase):
    """A transport-signature certificate registered for an information system (found by issuer and serial when
    a signature names its certificate instead of carrying it, Layout B)."""

    __tablename__ = "registry_certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    information_system_id: Mapped[int] = mapped_column(ForeignKey("registry_information_system.id", ondelete="CASCADE"))
    pem: Mapped[str] = mapped_column(Text)


class Service(RegistryBase):
    """A service published on the gateway; ``key`` is the ``serviceId`` on the wire."""

    __tablename__ = "registry_service"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_is_id: Mapped[int] = mapped_column(ForeignKey("registry_information_system.id"))
    interaction_mode: Mapped[str] = mapped_column(String(16))  # SYNC, ASYNC, SYNC_ASYNC
    wsdl_address: Mapped[str | None] = mapped_column(String(1000))
    routing_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    default_delivery_point_id: Mapped[int | None] = mapped_column(ForeignKey("registry_delivery_point.id"))
    send_mode: Mapped[str | None] = mapped_column(String(8))  # PUSH, PULL (asynchronous services)
    status_change_notification: Mapped[bool] = mapped_column(Boolean, default=False)
    delivery_notification: Mapped[bool] = mapped_column(Boolean, default=False)
    security_mode: Mapped[int] = mapped_column(Integer, default=0)  # what callers must provide, 0..3
    # Whether a caller whose certificate's revocation status cannot be learnt (no CRL, OCSP down) is let through.
    revocation_fail_open: Mapped[bool] = mapped_column(Boolean, default=False)
    stage: Mapped[int | None] = mapped_column(Integer)  # 1 development, 2 test, 3 pilot, 4 production
    registry_stage: Mapped[str] = mapped_column(String(16), default="PRODUCTION")  # TEST or PRODUCTION
    test_service_addresses: Mapped[list[str] | None] = mapped_column(JSON)
    test_requests_and_responses: Mapped[list[str] | None] = mapped_column(JSON)

    owner_is: Mapped[InformationSystem] = relationship()
    routes: Mapped[list[Route]] = relationship(cascade="all, delete-orphan", order_by="Route.name")
    users: Mapped[list[ServiceUser]] = relationship(cascade="all, delete-orphan", order_by="ServiceUser.ordinal")
    documents: Mapped[list[ServiceDocument]] = relationship(cascade="all, delete-orphan", order_by="ServiceDocument.id")
    message_parameters: Mapped[list[MessageParameter]] = relationship(
        cascade="all, delete-orphan", order_by="MessageParameter.id"
    )


class Route(RegistryBase):
    """A named route of a service to one delivery point (``routeId`` on the wire)."""

    __tablename__ = "registry_route"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("registry_service.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    delivery_point_id: Mapped[int] = mapped_column(ForeignKey("registry_delivery_point.id"))


class ServiceUser(RegistryBase):
    """An information system allowed to call a service ("Реестр прав доступа")."""

    __tablename__ = "registry_service_user"
    __table_args__ = (UniqueConstraint("service_id", "consumer_is_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("registry_service.id", ondelete="CASCADE"))
    consumer_is_id: Mapped[int] = mapped_column(ForeignKey("registry_information_system.id"))
    ordinal: Mapped[int] = mapped_column(Integer, default=1)
    delivery_address: Mapped[str | None] = mapped_column(String(1000))
    publication_basis: Mapped[str | None] = mapped_column(String(1000))
    connection_basis: Mapped[str | None] = mapped_column(String(1000))
    owner_permission: Mapped[str | None] = mapped_column(String(1000))

    consumer_is: Mapped[InformationSystem] = relationship()


class ServiceDocument(RegistryBase):
    """A document behind a service: publication basis, message formats, technical specification."""

    __tablename__ = "registry_service_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("registry_service.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # PUBLICATION_BASIS, MESSAGE_FORMATS, STPO
    reference: Mapped[str] = mapped_column(String(1000))


class MessageParameter(RegistryBase):
    """One parameter of a service's message formats (Appendix 1, part 5)."""

    __tablename__ = "registry_message_parameter"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("registry_service.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(String(16))  # REQUEST or RESPONSE
    parameter_name: Mapped[str] = mapped_column(String(500))
    parameter_format: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(200))
    mandatory: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(1000))


class RegistryVersion(RegistryBase):
    """A single row counting registry changes, so every process notices a change cheaply."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
