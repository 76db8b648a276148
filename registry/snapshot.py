"""A read-only, in-memory view of the registry for the message path, refreshed when the registry changes.

Every process keeps one :class:`RegistryCache`. It checks the registry version at most once per refresh interval
(one indexed single-row read) and rebuilds its snapshot only when the version moved, so a change made by any
process or by the CLI reaches every gateway process within that interval.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, fields
from functools import cached_property
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from registry.models import DEFAULT_MAX_CONCURRENT_CALLS, DeliveryPoint, InformationSystem, RegistryVersion, Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPointView:
    id: int
    url: str | None
    call_mode: int
    throttling_enabled: bool
    throttling_timeout_sec: int | None
    throttling_request_count: int | None
    retry_count: int
    async_call_timeout_sec: int | None
    max_errors: int | None
    max_error_interval_sec: int | None
    security_mode: int
    enabled: bool
    adapter_name: str | None = None
    adapter_options: dict[str, str] | None = None
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS  # per gateway process
    signature_algorithm: str = "RSA"  # RSA or GOST: the gateway's key for what it sends to this point
    tls_trusted_certificates: tuple[str, ...] = ()  # PEM; empty: the gateway's provider trust

    @cached_property
    def tls_trust(self) -> str:
        """The CAs its HTTPS server must chain to, as one PEM bundle ("" for the gateway's provider trust)."""
        return "\n".join(self.tls_trusted_certificates)

    @property
    def wants_gost(self) -> bool:
        """Whether what the gateway sends to this point is to be signed with its GOST key."""
        return self.signature_algorithm == "GOST"


@dataclass(frozen=True)
class SenderView:
    sender_id: str
    password_hash: str | None
    organisation_bin: str
    response_delivery_point_id: int | None
    certificates: tuple[x509.Certificate, ...] = ()

    def encryption_certificate(self) -> x509.Certificate | None:
        """The registered RSA certificate to encrypt to (security mode 3): the current one valid longest, and of
        those valid equally long (issued in the same second) the one registered last."""
        now = datetime.now(UTC)
        usable = [
            (c.not_valid_after_utc, position, c) for position, c in enumerate(self.certificates)
            if _is_rsa(c) and c.not_valid_before_utc <= now <= c.not_valid_after_utc
        ]
        return max(usable, key=lambda entry: entry[:2], default=(None, None, None))[2]


def _is_rsa(certificate: x509.Certificate) -> bool:
    try:
        return isinstance(certificate.public_key(), rsa.RSAPublicKey)
    except UnsupportedAlgorithm:  # a GOST certificate: cryptography does not read its key
        return False


@dataclass(frozen=True)
class ServiceView:
    key: str
    owner_sender_id: str
    interaction_mode: str
    routing_enabled: bool
    default_delivery_point_id: int | None
    security_mode: int
    send_mode: str | None
    status_change_notification: bool
    delivery_notification: bool
    routes: dict[str, int]
    users: frozenset[str]
    revocation_fail_open: bool = False

    def offers_sync(self) -> bool:
        return self.interaction_mode in ("SYNC", "SYNC_ASYNC")

    def offers_async(self) -> bool:
        return self.interaction_mode in ("ASYNC", "SYNC_ASYNC")


@dataclass(frozen=True)
class RegistrySnapshot:
    version: int
    senders: dict[str, SenderView]
    services: dict[str, ServiceView]
    delivery_points: dict[int, DeliveryPointView]
    certificates: dict[tuple[x509.Name, int], x509.Certificate]  # registered, by (issuer, serial)


def read_version(session: Session) -> int:
    return session.scalar(select(RegistryVersion.version).where(RegistryVersion.id == 1)) or 0


def build_snapshot(engine: Engine) -> RegistrySnapshot:
    """Read the whole registry into a snapshot."""
    with Session(engine) as session:
        version = read_version(session)
        systems = list(
            session.scalars(
                select(InformationSystem).options(
                    selectinload(InformationSystem.organisation), selectinload(InformationSystem.certificates)
                )
            )
        )
        certificates = {}
        senders = {}
        for system in systems:
            own = tuple(x509.load_pem_x509_certificate(registered.pem.encode()) for registered in system.certificates)
            for certificate in own:
                certificates[(certificate.issuer, certificate.serial_number)] = certificate
            senders[system.sender_id] = SenderView(
                system.sender_id, system.password_hash, system.organisation.bin, system.response_delivery_point_id, own
            )
        sender_ids = {s.id: s.sender_id for s in systems}
        services = {}
        query = select(Service).options(
            selectinload(Service.owner_is), selectinload(Service.routes), selectinload(Service.users)
        )
        for svc in session.scalars(query):
            services[svc.key] = ServiceView(
                key=svc.key,
                owner_sender_id=svc.owner_is.sender_id,
                interaction_mode=svc.interaction_mode,
                routing_enabled=svc.routing_enabled,
                default_delivery_point_id=svc.default_delivery_point_id,
                security_mode=svc.security_mode,
                send_mode=svc.send_mode,
                status_change_notification=svc.status_change_notification,
                delivery_notification=svc.delivery_notification,
                routes={r.name: r.delivery_point_id for r in svc.routes},
                users=frozenset(sender_ids[u.consumer_is_id] for u in svc.users),
                revocation_fail_open=svc.revocation_fail_open,
            )
        view_fields = [f.name for f in fields(DeliveryPointView)]
        points = {
            d.id: DeliveryPointView(**{name: _frozen(getattr(d, name)) for name in view_fields})
            for d in session.scalars(select(DeliveryPoint))
        }
    return RegistrySnapshot(
        version=version, senders=senders, services=services, delivery_points=points, certificates=certificates
    )


class RegistryCache:
    """The process's current snapshot, refreshed at most once per ``refresh_seconds`` when the version moved."""

    def __init__(self, engine: Engine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._snapshot = build_snapshot(engine)
        self._checked_at = time.monotonic()

    def current(self) -> RegistrySnapshot:
        """The snapshot to use for one message."""
        if time.monotonic() - self._checked_at >= self._refresh_seconds and self._lock.acquire(blocking=False):
            try:
                self._checked_at = time.monotonic()
                with Session(self._engine) as session:
                    changed = read_version(session) != self._snapshot.version
                if changed:
                    self._snapshot = build_snapshot(self._engine)
            except SQLAlchemyError as exc:
                # The registry in hand stays in force while the database cannot be read (at most one line per
                # refresh interval); what needs the database (the journal) refuses on its own.
                log.warning("registry refresh failed, keeping version %s: %s", self._snapshot.version, type(exc).__name__)
            finally:
                self._lock.release()
        return self._snapshot


def _frozen(value: object) -> object:
    """A column's value for a frozen view: lists (JSON columns) become tuples."""
    return tuple(value) if isinstance(value, list) else value
