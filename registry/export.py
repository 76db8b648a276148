"""Export the registry as the YAML file format (docs/registry.md) that ``gateway registry load`` reads back to
the identical registry.

Entities are written in natural-key order and with their defaults left out; passwords are never known, so an
information system's credential travels as its Argon2 ``passwordHash``. The same conversions from rows to file
entries serve the admin API (:mod:`registry.admin`), which shows entries without credentials.
"""
from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from registry.models import DeliveryPoint, InformationSystem, Organisation, Service, ServiceUser
from registry.schema import (
    DeliveryPointEntry,
    InformationSystemEntry,
    OrganisationEntry,
    RegistryFile,
    ServiceEntry,
)


def organisation_entry(organisation: Organisation) -> OrganisationEntry:
    """The file entry of an organisation row."""
    return OrganisationEntry(bin=organisation.bin, name=organisation.name, short_name=organisation.short_name)


def delivery_point_entry(point: DeliveryPoint) -> DeliveryPointEntry:
    """The file entry of a delivery point row (its adapter options are ${ENV} references, never secrets)."""
    values: dict[str, Any] = {
        name: getattr(point, name) for name in DeliveryPointEntry.model_fields if name != "adapter"
    }
    if point.adapter_name is not None:
        values["adapter"] = {"name": point.adapter_name, "options": dict(point.adapter_options or {})}
    return DeliveryPointEntry.model_validate(values)


def information_system_entry(system: InformationSystem, with_credentials: bool) -> InformationSystemEntry:
    """The file entry of an information system row; its password hash only if ``with_credentials``."""
    operator_values = {
        "name": system.operator_name,
        "short_name": system.operator_short_name,
        "operations_unit": system.operations_unit,
        "head_of_operations_unit": system.head_of_operations_unit,
        "responsible_official": system.responsible_official,
        "developer_contact": system.developer_contact,
    }
    operator = {k: v for k, v in operator_values.items() if v is not None}
    return InformationSystemEntry.model_validate({
        "sender_id": system.sender_id,
        "organisation": system.organisation.bin,
        "short_name": system.short_name,
        "name": system.name,
        "password_hash": system.password_hash if with_credentials else None,
        "availability_mode": system.availability_mode,
        "response_delivery_point": system.response_delivery_point_id,
        "operator": operator or None,
        "certificates": [certificate.pem for certificate in system.certificates],
    })


def service_entry(service: Service) -> ServiceEntry:
    """The file entry of a service row with its routes, users, documents and message parameters."""
    users = sorted(service.users, key=lambda u: (u.ordinal, u.consumer_is.sender_id))
    return ServiceEntry.model_validate({
        "key": service.key,
        "name": service.name,
        "description": service.description,
        "owner_is": service.owner_is.sender_id,
        "interaction_mode": service.interaction_mode,
        "wsdl_address": service.wsdl_address,
        "routing_enabled": service.routing_enabled,
        "default_delivery_point": service.default_delivery_point_id,
        "send_mode": service.send_mode,
        "status_change_notification": service.status_change_notification,
        "delivery_notification": service.delivery_notification,
        "security_mode": service.security_mode,
        "revocation_fail_open": service.revocation_fail_open,
        "stage": service.stage,
        "registry_stage": service.registry_stage,
        "test_service_addresses": list(service.test_service_addresses or []),
        "test_requests_and_responses": list(service.test_requests_and_responses or []),
        "routes": [{"name": r.name, "delivery_point": r.delivery_point_id} for r in service.routes],
        "users": [
            {
                "information_system": u.consumer_is.sender_id,
                "ordinal": u.ordinal,
                "delivery_address": u.delivery_address,
                "publication_basis": u.publication_basis,
                "connection_basis": u.connection_basis,
                "owner_permission": u.owner_permission,
            }
            for u in users
        ],
        "documents": [{"kind": d.kind, "reference": d.reference} for d in service.documents],
        "message_parameters": [
            {
                "message": p.message,
                "parameter_name": p.parameter_name,
                "parameter_format": p.parameter_format,
                "field": p.field,
                "mandatory": p.mandatory,
                "note": p.note,
            }
            for p in service.message_parameters
        ],
    })


def read_registry(session: Session, with_credentials: bool) -> RegistryFile:
    """The whole registry as one file model, every list in natural-key order."""
    organisations = session.scalars(select(Organisation).order_by(Organisation.bin))
    points = session.scalars(select(DeliveryPoint).order_by(DeliveryPoint.id))
    systems = session.scalars(
        select(InformationSystem)
        .options(selectinload(InformationSystem.organisation), selectinload(InformationSystem.certificates))
        .order_by(InformationSystem.sender_id)
    )
    services = session.scalars(
        select(Service)
        .options(
            selectinload(Service.owner_is),
            selectinload(Service.routes),
            selectinload(Service.users).selectinload(ServiceUser.consumer_is),
            selectinload(Service.documents),
            selectinload(Service.message_parameters),
        )
        .order_by(Service.key)
    )
    return RegistryFile(
        organisations=[organisation_entry(o) for o in organisations],
        delivery_points=[delivery_point_entry(d) for d in points],
        information_systems=[information_system_entry(s, with_credentials) for s in systems],
        services=[service_entry(s) for s in services],
    )


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (certificates) as literal blocks, so an export stays readable and diffable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def registry_yaml(registry: RegistryFile) -> str:
    """``registry`` in the file format, defaults left out (loading fills them in again)."""
    data = registry.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    header = "# Registry export: `gateway registry load FILE` restores exactly this registry.\n"
    return header + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)


def export_registry(engine: Engine) -> str:
    """The whole registry, credentials as password hashes, as YAML."""
    with Session(engine) as session:
        return registry_yaml(read_registry(session, with_credentials=True))
