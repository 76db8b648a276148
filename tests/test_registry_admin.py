"""The registry and tokens CLI (`gateway registry …`, `gateway tokens …`) and the export → load round trip."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.admin.tokens import authenticate
from gateway.commands.registry_admin import registry, tokens
from gateway.db import make_engine, migrate
from journals.audit import AuditLogEntry, RegistrationJournalEntry
from registry.credentials import password_matches
from registry.export import export_registry
from registry.loader import apply_registry, parse_registry
from registry.models import InformationSystem


@pytest.fixture()
def cli(database_url: str, loaded_registry: None):  # noqa: ANN201 - a small invoker
    runner = CliRunner()

    def invoke(group, *args: str, stdin: str | None = None, code: int = 0):  # noqa: ANN001, ANN202
        result = runner.invoke(group, list(args), input=stdin, env={"GATEWAY_DATABASE_URL": database_url})
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def test_tokens_are_shown_once_stored_hashed_and_revocable(cli, engine: Engine) -> None:  # noqa: ANN001
    name = f"cli-{uuid.uuid4().hex[:6]}"
    token = cli(tokens, "create", name, "--role", "auditor").stdout.strip()
    assert authenticate(engine, token).role == "auditor"
    listing = cli(tokens, "list").stdout
    assert name in listing and token not in listing and "active" in listing
    cli(tokens, "create", name, "--role", "administrator", code=1)  # names are never reused
    cli(tokens, "create", "x", "--role", "root", code=2)
    cli(tokens, "revoke", name)
    assert authenticate(engine, token) is None
    assert "revoked" in cli(tokens, "list").stdout
    cli(tokens, "revoke", name, code=1)
    with Session(engine) as session:
        stored = " ".join(str(v) for v in session.execute(select(AuditLogEntry.after, AuditLogEntry.before)).all())
    assert token not in stored


def test_every_registry_operation_through_the_cli(cli, engine: Engine, tmp_path: Path) -> None:  # noqa: ANN001
    suffix = uuid.uuid4().hex[:6]
    bin_, point, sender, key = "78" + str(uuid.uuid4().int)[:10], 6000 + int(suffix[:3], 16) % 1000, f"cli-{suffix}", f"Cli{suffix}"
    entries = {
        "organisations": f"bin: '{bin_}'\nname: CLI org\nshortName: CO\n",
        "delivery-points": f"id: {point}\nurl: http://127.0.0.1:9/cli\ncallMode: 1\n",
        "information-systems": f"senderId: {sender}\norganisation: '{bin_}'\nshortName: C\nname: CLI IS\npassword: cli-password\n",
        "services": f"key: {key}\nname: CLI service\nownerIS: {sender}\ninteractionMode: SYNC\ndefaultDeliveryPoint: {point}\n",
    }
    for kind, text in entries.items():
        file = tmp_path / f"{kind}.yaml"
        file.write_text(text)
        assert "created" in cli(registry, "create", kind, "--file", str(file)).stdout
    cli(registry, "create", "organisations", "--file", "-", stdin=entries["organisations"], code=1)  # exists
    shown = yaml.safe_load(cli(registry, "show", "services", key).stdout)
    assert shown["ownerIS"] == sender and shown["defaultDeliveryPoint"] == point
    assert key in [s["key"] for s in yaml.safe_load(cli(registry, "list", "services").stdout)]
    assert "passwordHash" not in cli(registry, "show", "information-systems", sender).stdout

    shown["description"] = "edited by hand"
    cli(registry, "update", "services", key, "--file", "-", stdin=yaml.safe_dump(shown))
    assert yaml.safe_load(cli(registry, "show", "services", key).stdout)["description"] == "edited by hand"

    bad = cli(registry, "create", "information-systems", "--file", "-", code=1,
              stdin=f"senderId: x-{suffix}\norganisation: '000'\nshortName: X\nname: X\npassword: short\n")
    assert "organisation" in bad.stderr and "password" in bad.stderr

    cli(registry, "add-user", key, "pep", "--connection-basis", "Act 5")
    assert yaml.safe_load(cli(registry, "show", "services", key).stdout)["users"][0]["connectionBasis"] == "Act 5"
    cli(registry, "add-user", key, "pep", code=1)
    with Session(engine) as session:
        events = session.scalars(
            select(RegistrationJournalEntry.event).where(RegistrationJournalEntry.service == key).order_by(RegistrationJournalEntry.id)
        ).all()
        assert events == ["SERVICE_PUBLISHED", "USER_CONNECTED"]
    cli(registry, "remove-user", key, "pep")

    password = cli(registry, "reset-credentials", sender).stdout.strip()
    cli(registry, "reset-credentials", sender, "--password-stdin", stdin="chosen-password\n")
    with Session(engine) as session:
        stored = session.scalar(select(InformationSystem.password_hash).where(InformationSystem.sender_id == sender))
    assert password_matches(stored, "chosen-password") and not password_matches(stored, password)

    cli(registry, "delete", "organisations", bin_, code=1)  # still owns an IS
    for kind, entity in (("services", key), ("information-systems", sender), ("delivery-points", str(point)), ("organisations", bin_)):
        cli(registry, "delete", kind, entity)
        cli(registry, "show", kind, entity, code=1)
    with Session(engine) as session:
        audited = session.execute(
            select(AuditLogEntry.operation, AuditLogEntry.actor).where(AuditLogEntry.entity_key == sender).order_by(AuditLogEntry.id)
        ).all()
    assert [op for op, _ in audited] == ["CREATE", "RESET_CREDENTIALS", "RESET_CREDENTIALS", "DELETE"]
    assert all(actor.startswith("cli:") for _, actor in audited)


def test_export_then_load_round_trips_the_registry_exactly(cli, engine: Engine, tmp_path: Path) -> None:  # noqa: ANN001
    exported = tmp_path / "registry.yaml"
    cli(registry, "export", str(exported))
    text = exported.read_text(encoding="utf-8")
    assert text == cli(registry, "export").stdout
    assert "passwordHash: $argon2id$" in text and "password:" not in text

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        migrate(fresh)
        apply_registry(fresh, parse_registry(text))
        assert export_registry(fresh) == text
    finally:
        fresh.dispose()
    apply_registry(engine, parse_registry(text))  # loading onto itself changes nothing
    assert export_registry(engine) == text


def test_journal_query_and_export_commands(cli, engine: Engine) -> None:  # noqa: ANN001
    import csv
    import io
    import json
    from datetime import UTC, datetime

    from sqlalchemy import delete

    from gateway.commands.registry_admin import journals_export, journals_query
    from journals.models import LoggingJournalEntry

    service = f"CliAudited{uuid.uuid4().hex[:6]}"
    rows = [LoggingJournalEntry(message_id=f"q{i}", channel="SYNC", state="DELIVERED", service_id=service, sender="pep",
                                received_at=datetime(2031, 5, 1, 10, i, tzinfo=UTC)) for i in range(3)]
    with Session(engine) as session, session.begin():
        session.add_all(rows)
        session.flush()
        ids = [r.id for r in rows]
    try:
        page = cli(journals_query, "--service-id", service, "--limit", "2")
        assert [json.loads(line)["id"] for line in page.stdout.splitlines()] == ids[:2]
        assert f"next after {ids[1]}" in page.stderr
        later = cli(journals_query, "--service-id", service, "--from", "2031-05-01T10:01:00")
        assert [json.loads(line)["message_id"] for line in later.stdout.splitlines()] == ["q1", "q2"]
        exported = cli(journals_export, "--service-id", service, "--format", "csv").stdout
        assert [r["message_id"] for r in csv.DictReader(io.StringIO(exported))] == ["q0", "q1", "q2"]
        assert len(json.loads(cli(journals_export, "--service-id", service, "--format", "json").stdout)) == 3
    finally:
        with Session(engine) as session, session.begin():
            session.execute(delete(LoggingJournalEntry).where(LoggingJournalEntry.id.in_(ids)))


@pytest.mark.parametrize("bound", ["--from", "--to"])
@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+0500", "9999-12-31T23:00:00-0500"])
def test_journal_commands_refuse_a_time_utc_cannot_hold(cli, bound: str, when: str) -> None:  # noqa: ANN001
    from gateway.commands.registry_admin import journals_export, journals_query

    for command in (journals_query, journals_export):
        refused = cli(command, bound, when, code=2)
        assert f"Invalid value for '{bound}'" in refused.output and "once in UTC" in refused.output
