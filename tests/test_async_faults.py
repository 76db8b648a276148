"""Malformed and unauthorised asynchronous calls get the operation's own SOAP fault, and a journal row."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.test_async_channel import accepted
from tests.wire import (
    ASYNC_TYPES,
    assert_wire_valid,
    async_envelope,
    async_send,
    delivery_notification,
    get_messages,
    get_status,
    journal_rows,
    post,
)


@pytest.fixture()
def async_url(gateway_url: str) -> str:
    return f"{gateway_url}/bip-async/"


def assert_async_fault(answer, operation: str, code: str) -> None:  # noqa: ANN001
    assert answer.status == 500, answer.body[:600]
    info = answer.fault_info()
    assert info.tag == f"{{{ASYNC_TYPES}}}{operation}Fault1_{operation}Fault"
    assert info.findtext("errorCode") == code, answer.body[:800]
    assert_wire_valid(info)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("sendMessage", async_send("AsyncPush", password="wrong-password")),
        ("getMessageStatus", get_status("whatever", "pep", "wrong-password")),
        ("getMessages", get_messages("AsyncPull", "asyncprov", "wrong-password")),
        ("sendDeliveryNotification", delivery_notification("m", "AsyncPull", "MESSAGE_ACCEPTED", "NOT_RESEND", "nobody", "x")),
        ("sendDeliveryNotification", async_envelope(
            "sendDeliveryNotification",
            "<notification><messageId>m</messageId><serviceId>AsyncPull</serviceId><notificationDate>2026-11-22T12:00:00Z"
            "</notificationDate><deliveryStatus><receiveStatus>MESSAGE_ACCEPTED</receiveStatus><statusDate>2026-11-22T12:00:00Z"
            "</statusDate><resendMessage>NOT_RESEND</resendMessage></deliveryStatus></notification>"
            "<requestDate>2026-11-22T12:00:00Z</requestDate>",
        )),
    ],
    ids=["send", "status", "fetch", "notify-unknown-sender", "notify-without-sender"],
)
def test_bad_credentials_on_every_operation(async_url: str, engine: Engine, operation: str, body: str) -> None:
    answer = post(async_url, body)
    assert_async_fault(answer, operation, "SCE002")
    rows = journal_rows(engine, answer.session_id())
    assert [(r.channel, r.state, r.error_code) for r in rows] == [("ASYNC", "REJECTED", "SCE002")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (async_send("AsyncPush", message_type="ANSWER"), "SCE001"),
        (async_send("AsyncPush").replace("<messageData><data>", "<messageData><nodata>").replace("</data></messageData>", "</nodata></messageData>"), "SCE001"),
        (async_send("AsyncPush", message_type="RESPONSE"), "SCE001"),
        (async_send("AsyncPush", sender_id="asyncprov", password="asyncprov-password", message_type="RESPONSE", correlation_id="no-such-chain"), "SCE021"),
        (async_send("AsyncPush", sender_id="outsider", password="outsider-password"), "SCE003"),
        (async_send("NoSuchService"), "SCE004"),
        (async_send("GbdflPersonInfo"), "SCE014"),
        (async_send("AsyncPush", route_id="NOPE"), "SCE008"),
    ],
    ids=["bad-type", "no-data", "response-without-chain", "unknown-chain", "not-a-user", "unknown-service", "sync-service", "unknown-route"],
)
def test_send_message_refusals(async_url: str, engine: Engine, body: str, code: str) -> None:
    answer = post(async_url, body)
    assert_async_fault(answer, "sendMessage", code)
    rows = journal_rows(engine, answer.session_id())
    assert len(rows) == 1 and rows[0].state == "REJECTED" and rows[0].error_code == code


def test_only_the_chains_provider_may_answer_it(async_url: str) -> None:
    message_id, _ = accepted(post(async_url, async_send("AsyncPull")))
    answer = post(async_url, async_send("AsyncPull", sender_id="mobile", password="mobile-password", message_type="RESPONSE", correlation_id=message_id))
    assert_async_fault(answer, "sendMessage", "SCE003")


def test_malformed_queries(async_url: str) -> None:
    assert_async_fault(post(async_url, get_messages("AsyncPull", "asyncprov", "asyncprov-password", amount=-1)), "getMessages", "SCE001")
    no_id = get_status("x", "pep", "pep-test-password").replace("<messageId>x</messageId>", "")
    assert_async_fault(post(async_url, no_id), "getMessageStatus", "SCE001")
    bad_status = delivery_notification("m", "AsyncPull", "MAYBE", "NOT_RESEND", "asyncprov", "asyncprov-password")
    assert_async_fault(post(async_url, bad_status), "sendDeliveryNotification", "SCE001")
    assert_async_fault(post(async_url, "not xml at all"), "sendMessage", "SCE001")
    other = async_envelope("changeMassageStatusNotification", "")
    assert_async_fault(post(async_url, other), "sendMessage", "SCE018")


def test_the_misspelling_fixed_is_accepted_too(async_url: str) -> None:
    message_id, _ = accepted(post(async_url, async_send("AsyncPullConfirmed")))
    answer = post(async_url, delivery_notification(message_id, "AsyncPullConfirmed", "MESSAGE_NOT_ACCEPTED", "NOT_RESEND", "asyncprov", "asyncprov-password"))
    assert answer.status == 200, answer.body[:600]
