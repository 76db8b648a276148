"""The incident journal: late deliveries open incidents by themselves; administrators fill in Appendix 7 and close."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway.commands.incidents import incidents_group
from gateway.delivery.late import open_late_delivery_incidents, record_late_deliveries_sent
from journals.incidents import LATE_DELIVERY
from gateway.store.models import AsyncMessage
from journals.models import IncidentJournalEntry


def stored_message(engine: Engine, accepted_minutes_ago: float, mode: str = "PUSH") -> str:
    message_id = str(uuid.uuid4())
    accepted = datetime.now(UTC) - timedelta(minutes=accepted_minutes_ago)
    with Session(engine) as session, session.begin():
        session.add(AsyncMessage(
            message_id=message_id, correlation_id=message_id, service_id="AsyncService", message_type="REQUEST",
            message_date="2026-11-23T10:00:00Z", sender_id="pep", recipient_id="asyncprov", properties=[], data="<data/>",
            delivery_mode=mode, state="ON_DELIVERY", fetched=False, session_id="{s}", accepted_at=accepted,
            state_changed_at=accepted,
        ))
    return message_id


def incidents_of(engine: Engine, message_id: str) -> list[IncidentJournalEntry]:
    with Session(engine) as session:
        return list(session.scalars(select(IncidentJournalEntry).where(IncidentJournalEntry.message_id == message_id)))


def test_a_push_message_late_past_the_threshold_opens_one_incident(engine: Engine) -> None:
    late = stored_message(engine, accepted_minutes_ago=20)
    on_time = stored_message(engine, accepted_minutes_ago=1)
    pulled = stored_message(engine, accepted_minutes_ago=20, mode="PULL")  # waiting for its recipient, not for us
    open_late_delivery_incidents(engine, threshold_seconds=600)
    open_late_delivery_incidents(engine, threshold_seconds=600)
    [incident] = incidents_of(engine, late)
    assert incident.kind == LATE_DELIVERY and incident.closed_at is None
    assert abs((incident.message_received_at.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(minutes=20))).total_seconds()) < 60
    assert incidents_of(engine, on_time) == [] and incidents_of(engine, pulled) == []
    delivered_at = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(update(AsyncMessage).where(AsyncMessage.message_id == late).values(state="DELIVERED", state_changed_at=delivered_at))
    record_late_deliveries_sent(engine)
    [incident] = incidents_of(engine, late)
    assert abs((incident.sent_at.replace(tzinfo=UTC) - delivered_at).total_seconds()) < 1


def test_an_administrator_records_appendix_7_and_closes(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    message_id = stored_message(engine, accepted_minutes_ago=30)
    open_late_delivery_incidents(engine, threshold_seconds=600)
    number = incidents_of(engine, message_id)[0].id
    runner = CliRunner()
    result = runner.invoke(incidents_group, [
        "record", str(number), "--notified-at", "2026-11-23T10:15:00+05:00", "--arrived-at", "2026-11-23T10:40:00+05:00",
        "--cause", "recipient's server down", "--employee", "A. Administrator",
    ])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["delay_cause"] == "recipient's server down" and shown["employee_name"] == "A. Administrator"
    assert datetime.fromisoformat(shown["administrator_notified_at"]) == datetime(2026, 11, 23, 5, 15, tzinfo=UTC)
    listed = [json.loads(line) for line in runner.invoke(incidents_group, ["list", "--open"]).output.splitlines()]
    assert number in {row["id"] for row in listed}
    result = runner.invoke(incidents_group, ["close", str(number), "--measures", "recipient restarted"])
    assert result.exit_code == 0 and json.loads(result.output)["closed_at"] is not None
    refused = runner.invoke(incidents_group, ["record", str(number), "--cause", "changed afterwards"])
    assert refused.exit_code != 0 and "closed" in refused.output
    assert number not in {json.loads(line)["id"] for line in runner.invoke(incidents_group, ["list", "--open"]).output.splitlines()}
    unzoned = runner.invoke(incidents_group, ["record", "999999", "--sent-at", "2026-11-23T10:00"])
    assert unzoned.exit_code != 0 and "time zone" in unzoned.output
