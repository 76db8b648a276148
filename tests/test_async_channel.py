"""The asynchronous channel end to end: IS → gateway → PUSH recipient / PULL fetch, and back along the chain."""
from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from emulators.push_recipient import PushRecipientEmulator
from gateway.security.certificates import organisation_bin
from gateway.security.wssec import verify_envelope
from journals.models import LoggingJournalEntry
from tests.wire import (
    Answer,
    assert_wire_valid,
    async_send,
    body_child,
    delivery_notification,
    get_messages,
    get_status,
    post,
    wait_for,
)

ASYNC = "{http://bip.bee.kz/AsyncChannel/v10/Types}"


def accepted(answer: Answer) -> tuple[str, str]:
    assert answer.status == 200, answer.body[:800]
    assert answer.payload.tag == f"{ASYNC}sendMessageResponse"
    assert_wire_valid(answer.payload)
    return answer.payload.findtext("response/messageId"), answer.payload.findtext("response/correlationId")


def status_of(async_url: str, message_id: str, sender_id: str, password: str) -> str:
    answer = post(async_url, get_status(message_id, sender_id, password))
    assert answer.status == 200, answer.body[:800]
    assert_wire_valid(answer.payload)
    return answer.payload.findtext("response/messageState")


def fetched(async_url: str, *args: object, **kwargs: object) -> list[etree._Element]:
    answer = post(async_url, get_messages(*args, **kwargs))
    assert answer.status == 200, answer.body[:800]
    assert_wire_valid(answer.payload)
    return answer.payload.findall("response/messages")


def pushed_to(recipient: PushRecipientEmulator, message_id: str) -> list[etree._Element]:
    return [body_child(r.body) for r in recipient.messages() if r.message_id == message_id]


def journal_states(engine: Engine, message_id: str) -> list[str]:
    with Session(engine) as session:
        query = select(LoggingJournalEntry.state).where(LoggingJournalEntry.message_id == message_id).order_by(LoggingJournalEntry.id)
        return list(session.scalars(query))


def test_request_by_push_and_response_back_by_pull(async_url: str, push: dict[str, PushRecipientEmulator], engine: Engine) -> None:
    message_id, correlation_id = accepted(post(async_url, async_send("AsyncPush")))
    assert correlation_id == message_id, "a REQUEST opens a chain named by its own id"
    delivered = wait_for(lambda: pushed_to(push["provider"], message_id))[0]
    assert_wire_valid(delivered)
    info = delivered.find("request/messageInfo")
    assert (info.findtext("messageId"), info.findtext("correlationId"), info.findtext("messageType")) == (message_id, message_id, "REQUEST")
    assert info.findtext("sender/senderId") == "pep" and info.find("sender/password") is None
    assert delivered.findtext("request/messageData/data/{urn:test}query/{urn:test}iin") == "931002451325"
    wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED")

    response_id, chain = accepted(post(async_url, async_send(
        "AsyncPush", sender_id="asyncprov", password="asyncprov-password", message_type="RESPONSE",
        correlation_id=message_id, data="<data><answer xmlns='urn:test'>found</answer></data>",
    )))
    assert chain == message_id
    messages = fetched(async_url, "AsyncPush", "pep", "pep-test-password")
    assert [m.findtext("messageInfo/messageId") for m in messages] == [response_id]
    assert messages[0].findtext("messageInfo/messageType") == "RESPONSE"
    assert messages[0].findtext("messageData/data/{urn:test}answer") == "found"
    assert fetched(async_url, "AsyncPush", "pep", "pep-test-password") == [], "a fetched message is handed out once"
    assert status_of(async_url, response_id, "asyncprov", "asyncprov-password") == "DELIVERED"
    assert journal_states(engine, message_id) == ["ON_DELIVERY", "DELIVERED"]
    assert journal_states(engine, response_id) == ["ON_DELIVERY", "DELIVERED"]


def test_response_pushed_to_initiator_with_status_notifications(async_url: str, push: dict[str, PushRecipientEmulator]) -> None:
    message_id, _ = accepted(post(async_url, async_send("AsyncPush", sender_id="mobile", password="mobile-password")))
    wait_for(lambda: pushed_to(push["provider"], message_id))
    notice = wait_for(lambda: [r for r in push["initiator"].notifications() if r.message_id == message_id])[0]
    assert notice.state == "DELIVERED"
    assert_wire_valid(body_child(notice.body))
    # Delivery point 11 has security mode 1: what the gateway sends there carries its signature.
    assert organisation_bin(verify_envelope(etree.fromstring(notice.body)).certificate) == "990140000099"
    response_id, _ = accepted(post(async_url, async_send(
        "AsyncPush", sender_id="asyncprov", password="asyncprov-password", message_type="UPDATE", correlation_id=message_id,
    )))
    pushed = wait_for(lambda: pushed_to(push["initiator"], response_id))[0]
    assert verify_envelope(pushed.getroottree().getroot()).certificate is not None
    assert pushed.findtext("request/messageInfo/correlationId") == message_id
    assert pushed.findtext("request/messageInfo/messageType") == "UPDATE"


def test_selection_rules_and_amount(async_url: str) -> None:
    provider = ("asyncprov", "asyncprov-password")
    # The database is shared by the session: take whatever earlier tests left unfetched, so "oldest" means ours.
    for _ in range(100):
        if not fetched(async_url, "AsyncPull", *provider, amount=0):
            break
    ids = [accepted(post(async_url, async_send("AsyncPull")))[0] for _ in range(4)]
    by_id = fetched(async_url, "AsyncPull", *provider, message_id=ids[2])
    assert [m.findtext("messageInfo/messageId") for m in by_id] == [ids[2]]
    by_chain = fetched(async_url, "AsyncPull", *provider, correlation_id=ids[3])
    assert [m.findtext("messageInfo/messageId") for m in by_chain] == [ids[3]]
    oldest_two = fetched(async_url, "AsyncPull", *provider, amount=2)
    assert [m.findtext("messageInfo/messageId") for m in oldest_two] == ids[:2]
    rest = fetched(async_url, "AsyncPull", *provider, amount=0)
    assert [m.findtext("messageInfo/messageId") for m in rest] == [], "ids[2] and ids[3] were handed out by id already"


def test_someone_elses_messages_are_never_returned(async_url: str) -> None:
    message_id, _ = accepted(post(async_url, async_send("AsyncPull")))
    assert fetched(async_url, "AsyncPull", "pep", "pep-test-password", message_id=message_id) == []
    assert fetched(async_url, "AsyncPull", "mobile", "mobile-password") == []
    answer = post(async_url, get_status(message_id, "mobile", "mobile-password"))
    assert answer.error_code() == "SCE020"
    assert [m.findtext("messageInfo/messageId") for m in fetched(async_url, "AsyncPull", "asyncprov", "asyncprov-password", message_id=message_id)] == [message_id]


def test_delivery_notification_confirms_or_asks_for_resend(async_url: str) -> None:
    message_id, _ = accepted(post(async_url, async_send("AsyncPullConfirmed")))
    provider = ("asyncprov", "asyncprov-password")
    assert len(fetched(async_url, "AsyncPullConfirmed", *provider, message_id=message_id)) == 1
    assert status_of(async_url, message_id, "pep", "pep-test-password") == "ON_DELIVERY", "awaits the recipient's confirmation"
    answer = post(async_url, delivery_notification(message_id, "AsyncPullConfirmed", "MESSAGE_NOT_ACCTEPTED", "RESEND", *provider))
    assert answer.status == 200, answer.body[:600]
    assert_wire_valid(answer.payload)
    again = fetched(async_url, "AsyncPullConfirmed", *provider)
    assert message_id in [m.findtext("messageInfo/messageId") for m in again]
    answer = post(async_url, delivery_notification(message_id, "AsyncPullConfirmed", "MESSAGE_ACCEPTED", "NOT_RESEND", *provider))
    assert answer.status == 200
    assert status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED"
    refused = post(async_url, delivery_notification(message_id, "AsyncPullConfirmed", "MESSAGE_ACCEPTED", "NOT_RESEND", "pep", "pep-test-password"))
    assert refused.error_code() == "SCE020", "only the recipient confirms a delivery"


def test_zeep_client_from_the_served_async_wsdl(gateway_url: str, delivery_worker: object) -> None:
    import datetime

    import zeep

    client = zeep.Client(f"{gateway_url}/bip-async/?wsdl")
    sent = client.service.sendMessage(request={
        "messageInfo": {
            "serviceId": "AsyncPull", "messageType": "REQUEST", "messageDate": datetime.datetime.now(datetime.UTC),
            "sender": {"senderId": "pep", "password": "pep-test-password"},
        },
        "messageData": {"data": "zeep payload"},
    })
    fetched_messages = client.service.getMessages(request={
        "messageId": sent["messageId"], "serviceId": "AsyncPull",
        "sender": {"senderId": "asyncprov", "password": "asyncprov-password"},
    })
    assert [m["messageInfo"]["messageId"] for m in fetched_messages["messages"]] == [sent["messageId"]]
    assert fetched_messages["messages"][0]["messageData"]["data"] == "zeep payload"
    with pytest.raises(zeep.exceptions.Fault) as fault:
        client.service.getMessageStatus(request={
            "messageId": sent["messageId"], "requestDate": datetime.datetime.now(datetime.UTC),
            "sender": {"senderId": "pep", "password": "not-the-password"},
        })
    assert fault.value.detail.find(".//errorCode").text == "SCE002"
