"""Loading YAML registry files: validation with every error named by its path, upsert, and the CLI."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli import SAMPLE_REGISTRY, main
from registry.loader import RegistryFileError, apply_registry, parse_registry
from registry.models import InformationSystem, RegistryVersion, Service
from registry.snapshot import build_snapshot

BROKEN = """
organisations:
  - {bin: "12345", name: Org, shortName: O}
  - {bin: "990140000099", name: Org, shortName: O}
deliveryPoints:
  - {id: 7, url: "http://egov2.company1.kz/ 8080", callMode: 3}
  - {id: 8, url: "http://127.0.0.1:1/x", callMode: 2, throttlingEnabled: true}
informationSystems:
  - {senderId: a, organisation: "990140000099", shortName: A, name: A, password: short}
services:
  - key: "Not Latin Ключ"
    name: S
    ownerIS: a
    interactionMode: SYNC
    defaultDeliveryPoint: 8
    colour: blue
"""


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(RegistryFileError) as caught:
        parse_registry(text)
    return {p.path: p.message for p in caught.value.problems}


def test_sample_registry_is_valid() -> None:
    registry = parse_registry(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    assert {s.key for s in registry.services} == {
        "GbdflPersonInfo", "GbdflPersonInfoGost", "GbdulFullInfo", "GbdflCertificateAsync",
        "EcsBenefits", "EcertCertificates", "EcertCertificatesAsync", "Payments", "PaymentsAsync",
    }


def test_every_structural_error_is_reported_with_its_path() -> None:
    problems = problems_of(BROKEN)
    assert set(problems) == {
        "organisations[0].bin",
        "deliveryPoints[0].url",
        "deliveryPoints[0].callMode",
        "deliveryPoints[1]",
        "informationSystems[0].password",
        "services[0].key",
        "services[0].colour",
    }
    assert "12 digits" in problems["organisations[0].bin"]
    assert "throttlingTimeoutSec" in problems["deliveryPoints[1]"]


def test_reference_errors_are_reported_with_their_paths() -> None:
    text = """
organisations: [{bin: "990140000099", name: O, shortName: O}]
deliveryPoints: [{id: 1, url: "http://127.0.0.1:1/p", callMode: 1}, {id: 1, url: "http://127.0.0.1:1/q", callMode: 1}]
informationSystems:
  - {senderId: a, organisation: "990140000011", shortName: A, name: A}
services:
  - {key: S1, name: S, ownerIS: nobody, interactionMode: SYNC, defaultDeliveryPoint: 9,
     users: [{informationSystem: ghost}]}
  - {key: S2, name: S, ownerIS: a, interactionMode: ASYNC, sendMode: PULL, routingEnabled: true,
     routes: [{name: R1, deliveryPoint: 5}, {name: R1, deliveryPoint: 1}]}
"""
    problems = problems_of(text)
    assert set(problems) == {
        "deliveryPoints[0].id",
        "deliveryPoints[1].id",
        "informationSystems[0].organisation",
        "services[0].ownerIS",
        "services[0].defaultDeliveryPoint",
        "services[0].users[0].informationSystem",
        "services[1].routes[0].name",
        "services[1].routes[1].name",
        "services[1].routes[0].deliveryPoint",
    }


def test_routing_rules() -> None:
    base = 'organisations: []\nservices:\n  - {key: S, name: S, ownerIS: a, interactionMode: SYNC%s}\n'
    assert "defaultDeliveryPoint is required" in problems_of(base % "")["services[0]"]
    assert "no defaultDeliveryPoint" in problems_of(base % ", routingEnabled: true, defaultDeliveryPoint: 1, routes: [{name: R, deliveryPoint: 1}]")["services[0]"]
    assert "sendMode" in problems_of(base.replace("SYNC", "ASYNC") % ", defaultDeliveryPoint: 1")["services[0]"]


def test_yaml_syntax_error_names_the_line() -> None:
    problems = problems_of("organisations:\n  - {bin: [unclosed\n")
    assert list(problems)[0].startswith("line ")


def test_load_is_an_upsert_and_replaces_nested_lists(tmp_path: Path) -> None:
    from gateway.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    text = SAMPLE_REGISTRY.read_text(encoding="utf-8")
    apply_registry(engine, parse_registry(text))
    apply_registry(engine, parse_registry(text.replace("GBDUL_UL_SEARCH_p1", "GBDUL_UL_SEARCH_p2")))
    with Session(engine) as session:
        assert session.scalar(select(RegistryVersion.version)) == 2
        assert len(list(session.scalars(select(Service)))) == 9
        pep = session.scalar(select(InformationSystem).where(InformationSystem.sender_id == "pep"))
        assert pep.password_hash.startswith("$argon2id$") and "pep-demo-password" not in pep.password_hash
    snapshot = build_snapshot(engine)
    assert snapshot.services["GbdulFullInfo"].routes == {"GBDUL_UL_SEARCH_p2": 2}
    assert snapshot.services["GbdflPersonInfo"].users == frozenset({"pep"})
    engine.dispose()


def test_cli_load_reports_problems_and_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["registry", "load", str(broken)])
    assert result.exit_code == 1
    assert "7 problem(s)" in result.output and "deliveryPoints[0].url" in result.output
    result = runner.invoke(main, ["registry", "load", "--check", str(SAMPLE_REGISTRY)])
    assert result.exit_code == 0 and "valid" in result.output
    result = runner.invoke(main, ["registry", "load", str(SAMPLE_REGISTRY)])
    assert result.exit_code == 0, result.output
    assert "9 services" in result.output
    assert "pep-demo-password" not in result.output


def test_registered_certificates_are_checked_and_loaded(tmp_path: Path) -> None:
    from gateway.db import make_engine, migrate
    from gateway.security.pki import create_ca, issue_participant

    base = "organisations: [{bin: \"990140000022\", name: O, shortName: O}]\ninformationSystems:\n"
    bad = base + "  - {senderId: a, organisation: \"990140000022\", shortName: A, name: A, certificates: [\"not a certificate\"]}\n"
    assert "PEM certificate" in problems_of(bad)["informationSystems[0].certificates[0]"]
    holder = issue_participant(create_ca(), "990140000022")
    good = base + "  - senderId: a\n    organisation: \"990140000022\"\n    shortName: A\n    name: A\n    certificates:\n      - |\n"
    good += "".join(f"        {line}\n" for line in holder.cert_pem.decode().splitlines())
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    apply_registry(engine, parse_registry(good))
    snapshot = build_snapshot(engine)
    assert snapshot.certificates[(holder.certificate.issuer, holder.certificate.serial_number)] == holder.certificate
    engine.dispose()


def test_a_delivery_point_has_either_a_url_or_an_adapter() -> None:
    base = "deliveryPoints:\n  - {id: 1, callMode: 1%s}\n"
    for extra, problem in (("", "either a url or an adapter"),
                           (', url: "http://127.0.0.1:1/p", adapter: {name: ecs}', "either a url or an adapter"),
                           (", adapter: {name: nosuch}", "adapter.name")):
        with pytest.raises(RegistryFileError) as refused:
            parse_registry(base % extra)
        assert problem in str(refused.value)
    parse_registry(base % ', adapter: {name: payments, options: {baseUrl: "http://127.0.0.1:1"}}')


def test_adapter_secrets_are_environment_references_never_values() -> None:
    entry = 'deliveryPoints:\n  - {id: 1, callMode: 1, adapter: {name: payments, options: {baseUrl: "http://127.0.0.1:1", token: %s}}}\n'
    with pytest.raises(RegistryFileError) as refused:
        parse_registry(entry % '"demo-agent-token"')
    assert "options.token is a secret" in str(refused.value)
    parse_registry(entry % '"${GATEWAY_ADAPTER_PAYMENTS_TOKEN}"')


def test_only_adapter_variables_can_be_named() -> None:
    from gateway.adapters.pool import resolve_options

    environ = {"GATEWAY_ADAPTER_TOKEN": "t", "GATEWAY_DATABASE_URL": "postgresql://secret"}
    assert resolve_options({"token": "${GATEWAY_ADAPTER_TOKEN}"}, environ) == {"token": "t"}
    with pytest.raises(ValueError, match="only GATEWAY_ADAPTER_"):
        resolve_options({"baseUrl": "http://x/${GATEWAY_DATABASE_URL}"}, environ)
    with pytest.raises(ValueError, match="not set"):
        resolve_options({"token": "${GATEWAY_ADAPTER_MISSING}"}, environ)


def test_values_longer_than_their_columns_are_refused_on_every_database(tmp_path: Path) -> None:
    from gateway.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    text = 'organisations:\n  - {bin: "990140000011", name: "%s", shortName: MJ}\n' % ("N" * 600)
    with pytest.raises(RegistryFileError) as refused:
        apply_registry(engine, parse_registry(text))
    assert "registry_organisation.name: longer than 500 characters" in str(refused.value)
