"""Load a YAML registry file: validate it whole, report every error by its path, then apply it in one transaction.

Loading is an upsert by natural key (BIN, delivery point id, senderId, service key); a service's routes, users,
documents and message parameters become exactly those in the file.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Engine, Integer, select, update
from sqlalchemy.orm import Session

from registry.credentials import hash_password
from registry.models import (
    Certificate,
    DeliveryPoint,
    InformationSystem,
    MessageParameter,
    Organisation,
    RegistryVersion,
    Route,
    Service,
    ServiceDocument,
    ServiceUser,
)
from registry.schema import RegistryFile


@dataclass(frozen=True)
class RegistryProblem:
    """One thing wrong in a registry file, at ``path`` (e.g. ``services[0].routes[1].deliveryPoint``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_INTEGER_RANGE = (-(2**31), 2**31 - 1)


def column_limit_problems(session: Session) -> list[RegistryProblem]:
    """Values about to be written that their columns cannot hold: PostgreSQL would refuse them, SQLite would
    keep them, so they are refused here for both, by table and column."""
    problems = []
    # Rows flushed earlier in the transaction are no longer "new": look at everything the session holds.
    for row in [*session.new, *session.identity_map.values()]:
        table = row.__table__
        for column in table.columns:
            value = getattr(row, column.key, None)
            if value is None:
                continue
            length = getattr(column.type, "length", None)
            if isinstance(value, str) and length is not None and len(value) > length:
                problems.append(RegistryProblem(f"{table.name}.{column.key}", f"longer than {length} characters"))
            elif isinstance(column.type, Integer) and isinstance(value, int) and not _INTEGER_RANGE[0] <= value <= _INTEGER_RANGE[1]:
                problems.append(RegistryProblem(f"{table.name}.{column.key}", "out of range"))
    return problems


class RegistryFileError(Exception):
    """A registry file that cannot be loaded; ``problems`` lists every error found."""

    def __init__(self, problems: list[RegistryProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadSummary:
    organisations: int
    delivery_points: int
    information_systems: int
    services: int


def _format_loc(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(file)"


def parse_registry(text: str) -> RegistryFile:
    """Parse and validate registry YAML; raise :class:`RegistryFileError` with every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise RegistryFileError([RegistryProblem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    try:
        registry = RegistryFile.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = [RegistryProblem(_format_loc(err["loc"]), err["msg"]) for err in exc.errors()]
        raise RegistryFileError(problems) from exc
    problems = check_references(registry)
    if problems:
        raise RegistryFileError(problems)
    return registry


def _duplicates(path: str, field: str, values: list[Any]) -> list[RegistryProblem]:
    counts = Counter(values)
    return [
        RegistryProblem(f"{path}[{i}].{field}", f"duplicate {field} {value!r}")
        for i, value in enumerate(values)
        if counts[value] > 1
    ]


def check_references(registry: RegistryFile) -> list[RegistryProblem]:
    """Rules that span entries: unique natural keys and references that resolve."""
    problems: list[RegistryProblem] = []
    bins = {o.bin for o in registry.organisations}
    dp_ids = {d.id for d in registry.delivery_points}
    senders = {s.sender_id for s in registry.information_systems}
    problems += _duplicates("organisations", "bin", [o.bin for o in registry.organisations])
    problems += _duplicates("deliveryPoints", "id", [d.id for d in registry.delivery_points])
    problems += _duplicates("informationSystems", "senderId", [s.sender_id for s in registry.information_systems])
    problems += _duplicates("services", "key", [s.key for s in registry.services])
    for i, system in enumerate(registry.information_systems):
        if system.organisation not in bins:
            problems.append(RegistryProblem(f"informationSystems[{i}].organisation", f"no organisation with BIN {system.organisation}"))
        if system.response_delivery_point is not None and system.response_delivery_point not in dp_ids:
            problems.append(RegistryProblem(f"informationSystems[{i}].responseDeliveryPoint", f"no delivery point {system.response_delivery_point}"))
    for i, service in enumerate(registry.services):
        at = f"services[{i}]"
        if service.owner_is not in senders:
            problems.append(RegistryProblem(f"{at}.ownerIS", f"no information system {service.owner_is!r}"))
        if service.default_delivery_point is not None and service.default_delivery_point not in dp_ids:
            problems.append(RegistryProblem(f"{at}.defaultDeliveryPoint", f"no delivery point {service.default_delivery_point}"))
        problems += _duplicates(f"{at}.routes", "name", [r.name for r in service.routes])
        for j, route in enumerate(service.routes):
            if route.delivery_point not in dp_ids:
                problems.append(RegistryProblem(f"{at}.routes[{j}].deliveryPoint", f"no delivery point {route.delivery_point}"))
        problems += _duplicates(f"{at}.users", "informationSystem", [u.information_system for u in service.users])
        for j, user in enumerate(service.users):
            if user.information_system not in senders:
                problems.append(RegistryProblem(f"{at}.users[{j}].informationSystem", f"no information system {user.information_system!r}"))
    return problems


def load_registry_file(engine: Engine, path: Path) -> LoadSummary:
    """Validate the file at ``path`` and apply it to the database."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryFileError([RegistryProblem(str(path), f"cannot read: {exc.strerror}")]) from exc
    return apply_registry(engine, parse_registry(text))


def apply_registry(engine: Engine, registry: RegistryFile) -> LoadSummary:
    """Upsert ``registry`` in one transaction and bump the registry version so every process reloads."""
    with Session(engine) as session, session.begin():
        orgs = {o.bin: o for o in session.scalars(select(Organisation))}
        for entry in registry.organisations:
            org = orgs.get(entry.bin) or Organisation(bin=entry.bin)
            org.name, org.short_name = entry.name, entry.short_name
            session.add(org)
            orgs[entry.bin] = org
        points = {d.id: d for d in session.scalars(select(DeliveryPoint))}
        for dp_entry in registry.delivery_points:
            point = points.get(dp_entry.id) or DeliveryPoint(id=dp_entry.id)
            _apply_delivery_point(point, dp_entry)
            session.add(point)
        session.flush()
        systems = {s.sender_id: s for s in session.scalars(select(InformationSystem))}
        for is_entry in registry.information_systems:
            system = systems.get(is_entry.sender_id) or InformationSystem(sender_id=is_entry.sender_id)
            session.add(system)
            _apply_information_system(system, is_entry, orgs[is_entry.organisation])
            systems[is_entry.sender_id] = system
        session.flush()
        services = {s.key: s for s in session.scalars(select(Service))}
        for svc_entry in registry.services:
            service = services.get(svc_entry.key) or Service(key=svc_entry.key)
            session.add(service)
            _apply_service(session, service, svc_entry, systems)
        problems = column_limit_problems(session)
        if problems:
            raise RegistryFileError(problems)
        bump_version(session)
    return LoadSummary(
        organisations=len(registry.organisations),
        delivery_points=len(registry.delivery_points),
        information_systems=len(registry.information_systems),
        services=len(registry.services),
    )


def bump_version(session: Session) -> None:
    """Record that the registry changed; processes notice within their refresh interval."""
    now = datetime.now(UTC)
    changed = session.execute(
        update(RegistryVersion).where(RegistryVersion.id == 1).values(version=RegistryVersion.version + 1, changed_at=now)
    ).rowcount
    if not changed:
        session.add(RegistryVersion(id=1, version=1, changed_at=now))


def _apply_delivery_point(point: DeliveryPoint, entry: Any) -> None:
    # The file's delivery-point fields and the table's columns carry the same names, but for the adapter.
    for name in type(entry).model_fields:
        if name != "adapter":
            setattr(point, name, getattr(entry, name))
    point.adapter_name = entry.adapter.name if entry.adapter else None
    point.adapter_options = dict(entry.adapter.options) if entry.adapter else None


def _apply_information_system(system: InformationSystem, entry: Any, organisation: Organisation) -> None:
    system.organisation = organisation
    system.short_name, system.name = entry.short_name, entry.name
    system.availability_mode = entry.availability_mode
    system.response_delivery_point_id = entry.response_delivery_point
    system.certificates = [Certificate(pem=pem) for pem in entry.certificates]
    if entry.password is not None:
        system.password_hash = hash_password(entry.password)
    elif entry.password_hash is not None:
        system.password_hash = entry.password_hash
    operator = entry.operator
    system.operator_name = operator.name if operator else None
    system.operator_short_name = operator.short_name if operator else None
    system.operations_unit = operator.operations_unit if operator else None
    for attr in ("head_of_operations_unit", "responsible_official", "developer_contact"):
        contact = getattr(operator, attr) if operator else None
        setattr(system, attr, contact.model_dump(by_alias=True, exclude_none=True) if contact else None)


def _apply_service(session: Session, service: Service, entry: Any, systems: dict[str, InformationSystem]) -> None:
    service.name, service.description = entry.name, entry.description
    service.owner_is = systems[entry.owner_is]
    service.interaction_mode = entry.interaction_mode
    service.wsdl_address = entry.wsdl_address
    service.routing_enabled = entry.routing_enabled
    service.default_delivery_point_id = entry.default_delivery_point
    service.send_mode = entry.send_mode
    service.status_change_notification = entry.status_change_notification
    service.delivery_notification = entry.delivery_notification
    service.security_mode = entry.security_mode
    service.revocation_fail_open = entry.revocation_fail_open
    service.stage = entry.stage
    service.registry_stage = entry.registry_stage
    service.test_service_addresses = list(entry.test_service_addresses)
    service.test_requests_and_responses = list(entry.test_requests_and_responses)
    # Old children go first: their unique keys may come back in the new lists.
    service.routes, service.users, service.documents, service.message_parameters = [], [], [], []
    session.flush()
    service.routes = [Route(name=r.name, delivery_point_id=r.delivery_point) for r in entry.routes]
    service.users = [
        ServiceUser(
            consumer_is=systems[u.information_system],
            ordinal=u.ordinal,
            delivery_address=u.delivery_address,
            publication_basis=u.publication_basis,
            connection_basis=u.connection_basis,
            owner_permission=u.owner_permission,
        )
        for u in entry.users
    ]
    service.documents = [ServiceDocument(kind=d.kind, reference=d.reference) for d in entry.documents]
    service.message_parameters = [
        MessageParameter(
            message=p.message,
            parameter_name=p.parameter_name,
            parameter_format=p.parameter_format,
            field=p.field,
            mandatory=p.mandatory,
            note=p.note,
        )
        for p in entry.message_parameters
    ]
