"""A field longer than the column it is kept in is refused at the front door (SCE001 naming it), journalled, and
cannot take concurrent valid exchanges down with it in a shared journal commit."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, inspect

import emulators.sync_provider as sync_provider_module
from emulators.sync_provider import SyncProviderEmulator
from gateway.soap.limits import FIELD_COLUMNS
from tests.wire import (
    Answer,
    async_envelope,
    assert_wire_valid,
    journal_rows,
    post,
    sender,
    sync_request,
)

LONG = "x" * 300  # longer than every limit: the widest kept column is varchar(200)
LONG_DATE = "0" * 280 + "2026-11-22T12:00:00Z"  # a lexically valid xs:dateTime (years may have any digits)
SYNC_SERVICE_ID = "GbdflPersonInfo"


def sync_with(field: str) -> str:
    """A SendMessage whose ``field`` is over-long."""
    if field == "requestInfo/correlationId":
        return sync_request(properties=f"<correlationId>{LONG}</correlationId>")
    overrides = {
        "requestInfo/messageId": {"message_id": LONG},
        "requestInfo/serviceId": {"service_id": LONG},
        "requestInfo/routeId": {"route_id": LONG},
        "requestInfo/sender/senderId": {"sender_id": LONG, "password": "unknown"},
    }[field]
    return sync_request(**overrides)


def async_send_with(field: str) -> str:
    values = {"correlationId": "", "serviceId": "AsyncPull", "messageType": "REQUEST", "routeId": "",
              "messageDate": "2026-11-22T12:00:00Z", "sender/senderId": "pep"}
    name = field.removeprefix("messageInfo/")
    values[name] = LONG_DATE if name == "messageDate" else LONG
    optional = "".join(f"<{n}>{values[n]}</{n}>" for n in ("correlationId", "routeId") if values[n])
    return async_envelope(
        "sendMessage",
        f"<messageInfo>{optional}<serviceId>{values['serviceId']}</serviceId><messageType>{values['messageType']}"
        f"</messageType><messageDate>{values['messageDate']}</messageDate>{sender(values['sender/senderId'], 'x')}"
        f"</messageInfo><messageData><data>payload</data></messageData>",
    )


def async_query_with(operation: str, field: str) -> str:
    message_id = LONG if field.endswith("/messageId") else "m-1"
    service_id = LONG if field.endswith("/serviceId") else "AsyncPull"
    sender_id = LONG if field.endswith("/senderId") else "pep"
    if operation == "getMessageStatus":
        return async_envelope("getMessageStatus", f"<messageId>{message_id}</messageId>{sender(sender_id, 'x')}")
    if operation == "getMessages":
        correlation = f"<correlationId>{LONG}</correlationId>" if field.endswith("/correlationId") else ""
        return async_envelope(
            "getMessages", f"<messageId>{message_id}</messageId>{correlation}<serviceId>{service_id}</serviceId>"
            f"{sender(sender_id, 'x')}",
        )
    return async_envelope(
        "sendDeliveryNotification",
        f"<notification><messageId>{message_id}</messageId><serviceId>{service_id}</serviceId><deliveryStatus>"
        f"<receiveStatus>MESSAGE_ACCEPTED</receiveStatus><resendMessage>NOT_RESEND</resendMessage></deliveryStatus>"
        f"</notification>{sender(sender_id, 'x')}",
    )


INBOUND = [(operation, field) for operation, fields in FIELD_COLUMNS.items() if operation != "SendMessageResponse"
           for field in fields]


def request_for(operation: str, field: str) -> tuple[str, str]:
    """(channel path, envelope) with ``field`` of ``operation`` over-long."""
    if operation == "SendMessage":
        return "/bip-sync/", sync_with(field)
    if operation == "sendMessage":
        return "/bip-async/", async_send_with(field)
    return "/bip-async/", async_query_with(operation, field)


def assert_refused_naming(answer: Answer, field: str) -> None:
    assert answer.status == 500, answer.body[:600]
    info = answer.fault_info()
    assert info.findtext("errorCode") == "SCE001", answer.body[:800]
    assert field in info.findtext("errorData"), answer.body[:800]
    assert_wire_valid(info)


@pytest.mark.parametrize(("operation", "field"), INBOUND, ids=[f"{o}:{f}" for o, f in INBOUND])
def test_an_over_long_field_is_refused_naming_it(
    gateway_url: str, engine: Engine, operation: str, field: str, provider: SyncProviderEmulator
) -> None:
    path, body = request_for(operation, field)
    answer = post(gateway_url + path, body)
    assert_refused_naming(answer, field)
    rows = journal_rows(engine, answer.fault_info().findtext("sessionId"))
    assert [(row.state, row.error_code) for row in rows] == [("REJECTED", "SCE001")]
    assert provider.received == []


def test_limits_are_the_database_columns(engine: Engine) -> None:
    """The codec's column lengths are those of the migrated schema, and every field's limit its shortest column's."""
    from gateway.soap.limits import COLUMN_LENGTHS, FIELD_LIMITS

    inspector = inspect(engine)
    lengths = {f"{table}.{column['name']}": getattr(column["type"], "length", None)
               for table in ("journal_logging", "async_message") for column in inspector.get_columns(table)}
    assert {column: lengths[column] for column in COLUMN_LENGTHS} == dict(COLUMN_LENGTHS)
    for operation, fields in FIELD_COLUMNS.items():
        for field, columns in fields.items():
            assert FIELD_LIMITS[operation][field] == min(lengths[column] for column in columns), field


def test_a_value_at_the_limit_is_accepted(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    message_id = "m" * 200
    answer = post(sync_url, sync_request(message_id=message_id))
    assert answer.status == 200, answer.body[:600]
    assert [row.message_id for row in journal_rows(engine, answer.session_id())][0] == message_id


def test_a_provider_answer_with_an_over_long_message_id_is_invalid(
    sync_url: str, engine: Engine, provider: SyncProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator names its answers with uuid4(): this one names it with a value too long to journal.
    monkeypatch.setattr(sync_provider_module, "uuid", SimpleNamespace(uuid4=lambda: LONG))
    answer = post(sync_url, sync_request())
    info = answer.fault_info()
    assert info.findtext("errorCode") == "SCE013"
    assert "responseInfo/messageId" in info.findtext("errorData")
    assert "SCE013" in [row.error_code for row in journal_rows(engine, info.findtext("sessionId"))]


def test_over_long_fields_do_not_fail_concurrent_valid_exchanges(
    sync_url: str, engine: Engine, provider: SyncProviderEmulator
) -> None:
    """200 valid calls alongside unauthenticated ones with over-long fields: every call is answered as it should
    be and journalled (a rejected value must not share, and fail, the valid calls' journal commit)."""
    hostile = [sync_request(sender_id=LONG, password="nope"), sync_request(message_id=LONG, password="nope"),
               sync_request(service_id=LONG, password="nope"), sync_request(route_id=LONG, password="nope")]
    bodies = [(True, sync_request())] * 200 + [(False, hostile[i % len(hostile)]) for i in range(100)]
    bodies = [bodies[(i * 7) % len(bodies)] for i in range(len(bodies))]  # interleaved (7 is coprime to 300)
    # Six at a time: the provider's delivery point takes eight calls at once (tests/test_registry.yaml).
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda item: (item[0], post(sync_url, item[1])), bodies))
    valid = [answer for is_valid, answer in answers if is_valid]
    refused = [answer for is_valid, answer in answers if not is_valid]
    assert [a.status for a in valid] == [200] * len(valid), [a.body[:300] for a in valid if a.status != 200][:3]
    assert {a.error_code() for a in refused} == {"SCE001"}
    for answer in valid:
        # the REQUEST and the RESPONSE delivered (whatever rows were written before the answer came)
        assert [row.state for row in journal_rows(engine, answer.session_id())].count("DELIVERED") == 2
    for answer in refused:
        assert [row.error_code for row in journal_rows(engine, answer.session_id())] == ["SCE001"]
