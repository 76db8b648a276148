"""Create, read, update, delete and list every registry entity, one at a time, for the admin API and CLI.

Entries are the registry file's own models (:mod:`registry.schema`) and go through the same checks as a loaded
file: the entry's fields first, then every cross-entry rule of :func:`registry.loader.check_references` run on
the whole registry with the change applied. Each change runs in one transaction together with its audit-log row
(and, for a publication or a connection, its registration-journal row) and a bump of the registry version, so
every gateway process picks it up within ``GATEWAY_REGISTRY_REFRESH_SECONDS``.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session, selectinload

from journals.audit import Registration, record_change, record_registration
from registry.credentials import hash_password
from registry.export import (
    delivery_point_entry,
    information_system_entry,
    organisation_entry,
    read_registry,
    service_entry,
)
from registry.loader import (
    column_limit_problems,
    RegistryProblem,
    _apply_delivery_point,
    _apply_information_system,
    _apply_service,
    _format_loc,
    bump_version,
    check_references,
)
from registry.models import (
    DeliveryPoint,
    InformationSystem,
    Organisation,
    Route,
    Service,
    ServiceUser,
)
from registry.schema import (
    MIN_PASSWORD_LENGTH,
    DeliveryPointEntry,
    InformationSystemEntry,
    OrganisationEntry,
    ServiceEntry,
    ServiceUserEntry,
)


class RegistryAdminError(Exception):
    """A registry operation that cannot be done; the message says why."""


class EntityNotFound(RegistryAdminError):
    """No entity with that key."""


class EntityConflict(RegistryAdminError):
    """The change clashes with the registry: the key exists already, or others still refer to the entity."""


def _fits(session: Session) -> None:
    problems = column_limit_problems(session)
    if problems:
        raise EntryInvalid(problems)


class EntryInvalid(RegistryAdminError):
    """The entry breaks the registry file's rules; ``problems`` names each by its path in the entry."""

    def __init__(self, problems: list[RegistryProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Kind:
    """One kind of registry entity: its file model, the file list it lives in, and its natural key."""

    name: str
    entry: type[BaseModel]
    file_list: str  # attribute of RegistryFile
    key_field: str  # attribute of the entry
    key_alias: str  # the key as written in a file or a JSON body
    key_type: Callable[[str], Any]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("organisations", OrganisationEntry, "organisations", "bin", "bin", str),
        Kind("delivery-points", DeliveryPointEntry, "delivery_points", "id", "id", int),
        Kind("information-systems", InformationSystemEntry, "information_systems", "sender_id", "senderId", str),
        Kind("services", ServiceEntry, "services", "key", "key", str),
    )
}
FILE_LIST_ALIASES = {"organisations": "organisations", "delivery_points": "deliveryPoints",
                     "information_systems": "informationSystems", "services": "services"}


def kind_of(name: str) -> Kind:
    """The kind called ``name`` (organisations, delivery-points, information-systems, services)."""
    try:
        return KINDS[name]
    except KeyError:
        raise EntityNotFound(f"no registry kind {name!r}; kinds: {', '.join(KINDS)}") from None


def public_view(entry: BaseModel) -> dict[str, Any]:
    """An entry as shown by the API and the CLI and kept in the audit log: camelCase, no credentials."""
    data = entry.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"password", "password_hash"})
    if isinstance(entry, InformationSystemEntry):
        data["hasPassword"] = entry.password_hash is not None
    return data


def _validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EntryInvalid([RegistryProblem(_format_loc(err["loc"]), err["msg"]) for err in exc.errors()]) from exc


class RegistryAdmin:
    """Registry operations on ``engine``; every change names its ``actor`` (a token name or a CLI user)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- reading --------------------------------------------------------------------------------------------

    def list(self, kind_name: str) -> list[dict[str, Any]]:
        """Every entity of a kind, in natural-key order, without credentials."""
        kind = kind_of(kind_name)
        with Session(self._engine) as session:
            registry = read_registry(session, with_credentials=True)
        return [public_view(entry) for entry in getattr(registry, kind.file_list)]

    def get(self, kind_name: str, key: str) -> dict[str, Any]:
        """One entity by its natural key, without credentials."""
        kind = kind_of(kind_name)
        with Session(self._engine) as session:
            return public_view(self._entry(session, kind, self._key(kind, key)))

    # -- changing -------------------------------------------------------------------------------------------

    def create(self, kind_name: str, data: Any, actor: str) -> dict[str, Any]:
        """Create an entity from its file entry (JSON or YAML shape); refused if its key exists."""
        kind = kind_of(kind_name)
        entry = _validate(kind.entry, data)
        key = getattr(entry, kind.key_field)
        with Session(self._engine) as session, session.begin():
            if self._row(session, kind, key) is not None:
                raise EntityConflict(f"{kind.name} {key} exists already")
            self._check(session, kind, entry)
            self._apply(session, kind, entry, actor, before=None)
            after = public_view(self._entry(session, kind, key))
            record_change(session, actor, "CREATE", kind.name, str(key), None, after)
            bump_version(session)
        return after

    def update(self, kind_name: str, key: str, data: Any, actor: str) -> dict[str, Any]:
        """Replace an entity with a whole new entry; its key cannot change. An information system given no
        password keeps its credential."""
        kind = kind_of(kind_name)
        typed_key = self._key(kind, key)
        if isinstance(data, dict):
            data = {kind.key_alias: typed_key, **data}
        entry = _validate(kind.entry, data)
        if getattr(entry, kind.key_field) != typed_key:
            raise EntryInvalid([RegistryProblem(kind.key_alias, f"the key cannot change (is {typed_key!r})")])
        with Session(self._engine) as session, session.begin():
            before_entry = self._entry(session, kind, typed_key)
            self._check(session, kind, entry)
            self._apply(session, kind, entry, actor, before=before_entry)
            after = public_view(self._entry(session, kind, typed_key))
            audited_after = dict(after)
            if getattr(entry, "password", None) is not None or getattr(entry, "password_hash", None) is not None:
                # The views never carry credentials, so say in the audit log that they were replaced.
                audited_after["credentialsChanged"] = True
            record_change(session, actor, "UPDATE", kind.name, str(typed_key), public_view(before_entry), audited_after)
            bump_version(session)
        return after

    def delete(self, kind_name: str, key: str, actor: str) -> None:
        """Delete an entity nothing refers to (a service goes with its routes, users, documents, parameters)."""
        kind = kind_of(kind_name)
        typed_key = self._key(kind, key)
        with Session(self._engine) as session, session.begin():
            before = public_view(self._entry(session, kind, typed_key))
            row = self._row(session, kind, typed_key)
            users = self._referrers(session, kind, row)
            if users:
                raise EntityConflict(f"{kind.name} {typed_key} is still referred to by {', '.join(users)}")
            session.delete(row)
            record_change(session, actor, "DELETE", kind.name, str(typed_key), before, None)
            bump_version(session)

    def add_service_user(self, service_key: str, data: Any, actor: str) -> dict[str, Any]:
        """Grant an information system the right to call a service (a ``users`` entry of the service)."""
        user = _validate(ServiceUserEntry, data)
        kind = KINDS["services"]
        with Session(self._engine) as session, session.begin():
            service = self._entry(session, kind, service_key)
            if any(u.information_system == user.information_system for u in service.users):
                raise EntityConflict(f"{user.information_system} is already a user of {service_key}")
            changed = service.model_copy(update={"users": [*service.users, user]})
            self._check(session, kind, changed)
            self._apply(session, kind, changed, actor, before=service)
            after = public_view(user)
            record_change(session, actor, "ADD_USER", "service-users", f"{service_key}/{user.information_system}", None, after)
            bump_version(session)
        return after

    def remove_service_user(self, service_key: str, sender_id: str, actor: str) -> None:
        """Withdraw an information system's right to call a service."""
        kind = KINDS["services"]
        with Session(self._engine) as session, session.begin():
            service = self._entry(session, kind, service_key)
            kept = [u for u in service.users if u.information_system != sender_id]
            if len(kept) == len(service.users):
                raise EntityNotFound(f"{sender_id} is not a user of {service_key}")
            removed = next(u for u in service.users if u.information_system == sender_id)
            self._apply(session, kind, service.model_copy(update={"users": kept}), actor, before=service)
            record_change(session, actor, "REMOVE_USER", "service-users", f"{service_key}/{sender_id}", public_view(removed), None)
            bump_version(session)

    def reset_credentials(self, sender_id: str, actor: str, password: str | None = None) -> str:
        """Give an information system a new password (random unless given) and return it: the only time it is
        ever shown. The next message with the old password is refused (the sender cache is bound to the hash)."""
        new_password = password if password is not None else secrets.token_urlsafe(24)
        if not isinstance(new_password, str) or len(new_password) < MIN_PASSWORD_LENGTH:
            raise EntryInvalid([RegistryProblem("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")])
        with Session(self._engine) as session, session.begin():
            system = session.scalar(select(InformationSystem).where(InformationSystem.sender_id == sender_id))
            if system is None:
                raise EntityNotFound(f"information-systems {sender_id} does not exist")
            had_password = system.password_hash is not None
            system.password_hash = hash_password(new_password)
            record_change(
                session, actor, "RESET_CREDENTIALS", "information-systems", sender_id,
                {"hasPassword": had_password}, {"hasPassword": True},
            )
            bump_version(session)
        return new_password

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _key(kind: Kind, key: Any) -> Any:
        try:
            return kind.key_type(key)
        except ValueError:
            raise EntityNotFound(f"{kind.name} {key} does not exist") from None

    @staticmethod
    def _row(session: Session, kind: Kind, key: Any) -> Any:
        if kind.name == "organisations":
            return session.scalar(select(Organisation).where(Organisation.bin == key))
        if kind.name == "delivery-points":
            return session.get(DeliveryPoint, key)
        if kind.name == "information-systems":
            return session.scalar(
                select(InformationSystem)
                .options(selectinload(InformationSystem.organisation), selectinload(InformationSystem.certificates))
                .where(InformationSystem.sender_id == key)
            )
        return session.scalar(select(Service).where(Service.key == key))

    def _entry(self, session: Session, kind: Kind, key: Any) -> Any:
        row = self._row(session, kind, key)
        if row is None:
            raise EntityNotFound(f"{kind.name} {key} does not exist")
        if kind.name == "organisations":
            return organisation_entry(row)
        if kind.name == "delivery-points":
            return delivery_point_entry(row)
        if kind.name == "information-systems":
            return information_system_entry(row, with_credentials=True)
        return service_entry(row)

    @staticmethod
    def _check(session: Session, kind: Kind, entry: Any) -> None:
        """The loader's cross-entry rules, on the current registry with ``entry`` put in (added or replaced)."""
        current = read_registry(session, with_credentials=False)
        entries = list(getattr(current, kind.file_list))
        key = getattr(entry, kind.key_field)
        index = next((i for i, e in enumerate(entries) if getattr(e, kind.key_field) == key), len(entries))
        entries[index:index + 1] = [entry]
        problems = check_references(current.model_copy(update={kind.file_list: entries}))
        prefix = f"{FILE_LIST_ALIASES[kind.file_list]}[{index}]"
        mine = [
            RegistryProblem(p.path[len(prefix):].lstrip(".") or "(entry)", p.message)
            for p in problems
            if p.path == prefix or p.path.startswith(prefix + ".") or p.path.startswith(prefix + "[")
        ]
        if mine:
            raise EntryInvalid(mine)

    def _apply(self, session: Session, kind: Kind, entry: Any, actor: str, before: Any) -> None:
        """Write ``entry`` with the loader's own helpers; a service also records its registrations."""
        key = getattr(entry, kind.key_field)
        row = self._row(session, kind, key)
        if kind.name == "organisations":
            row = row or Organisation(bin=key)
            row.name, row.short_name = entry.name, entry.short_name
            session.add(row)
        elif kind.name == "delivery-points":
            row = row or DeliveryPoint(id=key)
            _apply_delivery_point(row, entry)
            session.add(row)
        elif kind.name == "information-systems":
            organisation = session.scalar(select(Organisation).where(Organisation.bin == entry.organisation))
            row = row or InformationSystem(sender_id=key)
            _apply_information_system(row, entry, organisation)
            session.add(row)
        else:
            names = {entry.owner_is, *(u.information_system for u in entry.users)}
            systems = {
                s.sender_id: s
                for s in session.scalars(select(InformationSystem).where(InformationSystem.sender_id.in_(names)))
            }
            row = row or Service(key=key)
            session.add(row)
            _apply_service(session, row, entry, systems)
            _fits(session)
            session.flush()
            self._register(session, entry, before, systems, actor)
        # Before the flush: flushed rows nobody holds drop out of the session, and PostgreSQL would refuse them.
        _fits(session)
        session.flush()

    @staticmethod
    def _register(
        session: Session, entry: ServiceEntry, before: ServiceEntry | None, systems: dict[str, InformationSystem], actor: str
    ) -> None:
        """Registration journal rows (gateway-rules.md §2.2 step 4, §2.3 step 5): the service's publication when
        it first appears, a connection for every user it did not have before."""
        owner = systems[entry.owner_is]
        basis = next((d.reference for d in entry.documents if d.kind == "PUBLICATION_BASIS"), None)
        service = dict(
            owner_organisation=owner.organisation.name, owner_information_system=owner.name,
            service=entry.key, service_name=entry.name, description=entry.description,
        )
        if before is None:
            record_registration(session, actor, Registration(event="SERVICE_PUBLISHED", publication_basis=basis, **service))
        known = {u.information_system for u in before.users} if before else set()
        for user in entry.users:
            if user.information_system in known:
                continue
            consumer = systems[user.information_system]
            record_registration(session, actor, Registration(
                event="USER_CONNECTED", publication_basis=user.publication_basis or basis,
                user_organisation=consumer.organisation.name, user_information_system=consumer.name,
                user_sender_id=consumer.sender_id, connection_basis=user.connection_basis, **service,
            ))

    @staticmethod
    def _referrers(session: Session, kind: Kind, row: Any) -> list[str]:
        """What still refers to ``row`` and so forbids deleting it."""
        if kind.name == "organisations":
            return [f"information-systems {s}" for s in session.scalars(
                select(InformationSystem.sender_id).where(InformationSystem.organisation_id == row.id))]
        if kind.name == "delivery-points":
            services = session.scalars(select(Service.key).where(or_(
                Service.default_delivery_point_id == row.id,
                Service.id.in_(select(Route.service_id).where(Route.delivery_point_id == row.id)),
            )))
            systems = session.scalars(
                select(InformationSystem.sender_id).where(InformationSystem.response_delivery_point_id == row.id))
            return [f"services {k}" for k in services] + [f"information-systems {s}" for s in systems]
        if kind.name == "information-systems":
            owned = session.scalars(select(Service.key).where(Service.owner_is_id == row.id))
            used = session.scalars(
                select(Service.key).join(ServiceUser, ServiceUser.service_id == Service.id)
                .where(ServiceUser.consumer_is_id == row.id))
            return [f"services {k} (owner)" for k in owned] + [f"services {k} (user)" for k in used]
        return []

