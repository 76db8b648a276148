"""The delivery worker's per-delivery-point rules: throttle, retries, breaker and its incident, re-enabling."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
from gateway.cli import main
from gateway.store.models import DeliveryPointState, DeliveryTask
from journals.models import IncidentJournalEntry
from tests.test_async_channel import accepted, status_of
from tests.wire import async_send, post, wait_for


def test_throttle_never_exceeds_n_calls_per_window(async_url: str, push: dict[str, PushRecipientEmulator]) -> None:
    # Delivery point 12: at most 4 calls in any 1-second window.
    ids = {accepted(post(async_url, async_send("AsyncThrottled")))[0] for _ in range(12)}
    wait_for(lambda: ids <= {r.message_id for r in push["throttled"].messages()}, seconds=30)
    times = sorted(r.at for r in push["throttled"].messages() if r.message_id in ids)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 4, f"{busiest} calls within one second"
    assert busiest == 4, "the throttle held back calls it could have made"
    assert times[-1] - times[0] >= 2.0, "12 calls at 4 per second need at least two full windows"
    for message_id in ids:
        assert status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED"


def test_retry_count_is_exact_and_then_not_delivered(async_url: str, push: dict[str, PushRecipientEmulator], engine: Engine) -> None:
    recipient = push["flaky"]  # delivery point 13: retryCount 3, so 4 attempts in all
    recipient.behaviour = RecipientBehaviour(fail_next=1000)
    before = recipient.attempts
    message_id, _ = accepted(post(async_url, async_send("AsyncFlaky")))
    wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "NOT_DELIVERED")
    time.sleep(0.5)  # any extra attempt would have been made by now
    assert recipient.attempts - before == 4
    with Session(engine) as session:
        task = session.scalars(select(DeliveryTask).where(DeliveryTask.message_id == message_id)).one()
        assert (task.state, task.attempts) == ("FAILED", 4)
        assert "RCP500" in task.last_error


def test_a_recipient_that_recovers_gets_the_message(async_url: str, push: dict[str, PushRecipientEmulator]) -> None:
    recipient = push["flaky"]
    recipient.behaviour = RecipientBehaviour(fail_next=2)
    before = recipient.attempts
    message_id, _ = accepted(post(async_url, async_send("AsyncFlaky")))
    wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED")
    assert recipient.attempts - before == 3
    assert [r.message_id for r in recipient.messages()].count(message_id) == 1


def point_state(engine: Engine, point_id: int) -> DeliveryPointState | None:
    with Session(engine) as session:
        return session.get(DeliveryPointState, point_id)


def test_breaker_trips_at_max_errors_and_an_administrator_brings_it_back(
    async_url: str, push: dict[str, PushRecipientEmulator], engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipient = push["breaker"]  # delivery point 14: retryCount 0, maxErrors 3 within 1 s
    recipient.behaviour = RecipientBehaviour(fail_next=3)
    failing = [accepted(post(async_url, async_send("AsyncBreaker")))[0] for _ in range(3)]
    wait_for(lambda: (state := point_state(engine, 14)) is not None and state.switched_off)
    for message_id in failing:
        wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "NOT_DELIVERED")
    with Session(engine) as session:
        incident = session.scalars(
            select(IncidentJournalEntry).where(IncidentJournalEntry.delivery_point_id == 14).order_by(IncidentJournalEntry.id.desc())
        ).first()
    assert incident is not None and incident.kind == "BREAKER_TRIPPED" and incident.closed_at is None
    assert "3 failed deliveries" in incident.delay_cause

    attempts = recipient.attempts
    queued, _ = accepted(post(async_url, async_send("AsyncBreaker")))
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") == "DELIVERY_STOPPED")
    time.sleep(0.5)
    assert recipient.attempts == attempts, "a switched-off point gets no calls"

    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["delivery", "enable", "14"])
    assert result.exit_code == 0 and "switched on" in result.output, result.output
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") == "DELIVERED")
    with Session(engine) as session:
        closed = session.get(IncidentJournalEntry, incident.id)
        assert closed.closed_at is not None and "administrator" in closed.measures_taken


def test_failures_spread_wider_than_the_interval_do_not_trip(
    async_url: str, push: dict[str, PushRecipientEmulator], engine: Engine
) -> None:
    recipient = push["breaker"]
    for _ in range(3):
        recipient.behaviour = RecipientBehaviour(fail_next=1)
        message_id, _ = accepted(post(async_url, async_send("AsyncBreaker")))
        wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "NOT_DELIVERED")
        time.sleep(1.2)  # longer than maxErrorInterval (1 s): the window never holds 3 failures
    state = point_state(engine, 14)
    assert state is not None and not state.switched_off
