"""A failed delivery is recorded with what really happened: connection refused, timed out, the HTTP status, the
SOAP fault or bad XML, in the message's status and in the incident the breaker opens."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
from journals.models import IncidentJournalEntry
from tests.test_async_channel import accepted, status_of
from tests.wire import async_send, get_status, post, wait_for

PEP = ("pep", "pep-test-password")


def status_message(async_url: str, message_id: str) -> str:
    return post(async_url, get_status(message_id, *PEP)).payload.findtext("response/status/statusMessage")


def undelivered(async_url: str, service: str) -> str:
    """Send one message to ``service`` and wait until it is NOT_DELIVERED; its status message."""
    message_id, _ = accepted(post(async_url, async_send(service)))
    wait_for(lambda: status_of(async_url, message_id, *PEP) == "NOT_DELIVERED", seconds=20)
    return status_message(async_url, message_id)


@pytest.mark.parametrize(
    ("behaviour", "cause", "not_said"),
    [
        (RecipientBehaviour(down=True), "HTTP 503 Service Unavailable", "XML"),
        (RecipientBehaviour(delay_seconds=1.5), "timed out", "refused"),
        (RecipientBehaviour(fail_next=1), "SOAP Fault: RCP500", "HTTP 5"),
        (RecipientBehaviour(garbage=True), "bad XML in an HTTP 200 answer", "timed out"),
    ],
)
def test_the_status_names_the_real_cause(
    async_url: str, push: dict[str, PushRecipientEmulator], behaviour: RecipientBehaviour, cause: str, not_said: str
) -> None:
    push["causes"].behaviour = behaviour
    said = undelivered(async_url, "AsyncCauses")
    assert cause in said and not_said not in said, said


def test_a_refused_connection_is_recorded_as_refused_not_timed_out(async_url: str, engine: Engine) -> None:
    said = undelivered(async_url, "AsyncRefused")
    assert "connection refused" in said and "timed out" not in said, said
    with Session(engine) as session:
        incident = session.scalars(
            select(IncidentJournalEntry).where(IncidentJournalEntry.delivery_point_id == 17, IncidentJournalEntry.kind == "BREAKER_TRIPPED")
        ).first()
    assert incident is not None
    assert "connection refused" in incident.delay_cause and "timed out" not in incident.delay_cause, incident.delay_cause
