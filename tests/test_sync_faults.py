"""Every failure is a SOAP 1.1 Fault with the sync ErrorInfo in its detail, its catalogue code, and a journal row."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from gateway.serving import BackgroundAsgiServer
from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
from gateway.app import create_app
from gateway.errors import ErrorInfo
from tests.conftest import gateway_settings
from tests.wire import SOAP_ENV, SYNC_TYPES, Answer, assert_wire_valid, journal_rows, post, sync_request

FAULT_ELEMENT = f"{{{SYNC_TYPES}}}SendMessageFault1_SendMessageFault"


def assert_fault(answer: Answer, code: str, faultcode: str) -> None:
    assert answer.status == 500, answer.body[:500]
    fault = answer.payload
    assert fault.findtext("faultcode") == f"soap:{faultcode}"
    assert fault.findtext("faultstring")
    info = answer.fault_info()
    assert info.tag == FAULT_ELEMENT
    assert info.findtext("errorCode") == code
    assert_wire_valid(info)


def assert_journalled(engine: Engine, answer: Answer, code: str, state: str) -> None:
    rows = [row for row in journal_rows(engine, answer.session_id()) if row.message_type == "REQUEST"]
    assert rows, "a refused request is journalled too"
    outcome = rows[-1]
    assert outcome.state == state and outcome.error_code == code and outcome.channel == "SYNC"
    # A request that reached the provider's side was journalled as sent before the call, a refused one only once.
    assert [row.state for row in rows[:-1]] == ([] if state == "REJECTED" else ["ON_DELIVERY"])


@pytest.mark.parametrize(
    "body",
    [
        "this is not XML",
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"/>',
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body/></soapenv:Envelope>',
        "<Envelope><Body/></Envelope>",
        sync_request().replace("<serviceId>GbdflPersonInfo</serviceId>", ""),
        sync_request().replace("<messageDate>2026-11-22T12:00:00.000+05:00</messageDate>", "<messageDate>yesterday</messageDate>"),
        sync_request().replace("<requestInfo>", "<requestInfo>").replace("<senderId>pep</senderId>", ""),
        sync_request(properties=f"<properties><key>{'k' * 31}</key><value>v</value></properties>"),
        sync_request().replace("<request>", '<request xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true">'),
    ],
    ids=["not-xml", "no-body", "empty-body", "not-soap", "no-serviceId", "bad-date", "no-senderId", "long-key", "nil-request"],
)
def test_malformed_message(sync_url: str, engine: Engine, provider: SyncProviderEmulator, body: str) -> None:
    answer = post(sync_url, body)
    assert_fault(answer, "SCE001", "Client")
    assert_journalled(engine, answer, "SCE001", "REJECTED")
    assert provider.received == []


def test_other_operation_at_the_sync_address(sync_url: str, engine: Engine) -> None:
    body = sync_request().replace("SendMessage", "sendMessage").replace(SYNC_TYPES, "http://bip.bee.kz/AsyncChannel/v10/Types")
    assert_fault(post(sync_url, body), "SCE018", "Client")


def test_soap_12_envelope_is_refused(sync_url: str) -> None:
    body = sync_request().replace(SOAP_ENV, "http://www.w3.org/2003/05/soap-envelope")
    assert_fault(post(sync_url, body), "SCE001", "Client")


def test_wrong_content_type(sync_url: str) -> None:
    assert_fault(post(sync_url, sync_request(), content_type="application/json"), "SCE001", "Client")


def test_unknown_must_understand_header(sync_url: str) -> None:
    header = '<soapenv:Header><x:Routing xmlns:x="urn:other" soapenv:mustUnderstand="1"/></soapenv:Header>'
    answer = post(sync_url, sync_request().replace("<soapenv:Body>", header + "<soapenv:Body>"))
    assert answer.payload.findtext("faultcode") == "soap:MustUnderstand"
    assert answer.error_code() == "SCE019"


def test_unknown_service(sync_url: str, engine: Engine) -> None:
    answer = post(sync_url, sync_request(service_id="NoSuchService"))
    assert_fault(answer, "SCE004", "Client")
    assert_journalled(engine, answer, "SCE004", "REJECTED")


def test_unknown_route(sync_url: str, engine: Engine) -> None:
    answer = post(sync_url, sync_request(service_id="GbdulFullInfo", route_id="NO_SUCH_ROUTE"))
    assert_fault(answer, "SCE008", "Client")
    assert_journalled(engine, answer, "SCE008", "REJECTED")


def test_routed_service_without_route_id(sync_url: str) -> None:
    assert_fault(post(sync_url, sync_request(service_id="GbdulFullInfo")), "SCE008", "Client")


@pytest.mark.parametrize(
    ("sender", "password"),
    [("pep", "wrong-password"), ("pep", None), ("nobody", "pep-test-password"), ("gbdfl", "anything-at-all")],
    ids=["wrong-password", "no-password", "unknown-sender", "is-without-credentials"],
)
def test_bad_credentials(sync_url: str, engine: Engine, provider: SyncProviderEmulator, sender: str, password: str | None) -> None:
    answer = post(sync_url, sync_request(sender_id=sender, password=password))
    assert_fault(answer, "SCE002", "Client")
    assert answer.fault_info().findtext("errorData") is None, "the fault must not say which part was wrong"
    assert_journalled(engine, answer, "SCE002", "REJECTED")
    assert provider.received == []


def test_a_right_password_does_not_open_the_door_to_a_wrong_one(sync_url: str, provider: SyncProviderEmulator) -> None:
    assert post(sync_url, sync_request()).status == 200
    assert post(sync_url, sync_request(password="pep-test-passwore")).error_code() == "SCE002"


def test_sender_not_a_user_of_the_service(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request(sender_id="outsider", password="outsider-password"))
    assert_fault(answer, "SCE003", "Client")
    assert_journalled(engine, answer, "SCE003", "REJECTED")
    assert provider.received == []


@pytest.mark.parametrize("service", ["AsyncOnly"])
def test_asynchronous_service_on_the_sync_channel(sync_url: str, service: str) -> None:
    assert_fault(post(sync_url, sync_request(service_id=service)), "SCE014", "Client")


def test_switched_off_delivery_point(sync_url: str, provider: SyncProviderEmulator) -> None:
    assert_fault(post(sync_url, sync_request(service_id="SwitchedOff")), "SCE009", "Server")
    assert provider.received == []


def test_provider_unreachable(sync_url: str, engine: Engine) -> None:
    answer = post(sync_url, sync_request(service_id="UnreachableService"))
    assert_fault(answer, "SCE009", "Server")
    assert_journalled(engine, answer, "SCE009", "NOT_DELIVERED")


def test_provider_http_error(sync_url: str, provider: SyncProviderEmulator) -> None:
    provider.behaviour = ProviderBehaviour(http_status=503)
    answer = post(sync_url, sync_request())
    assert_fault(answer, "SCE009", "Server")
    assert "503" in answer.fault_info().findtext("errorData")


def test_provider_timeout(database_url: str, engine: Engine, loaded_registry: None, provider: SyncProviderEmulator) -> None:
    app = create_app(gateway_settings(database_url, sync_timeout_seconds=0.5), engine=engine)
    provider.behaviour = ProviderBehaviour(delay_seconds=1.5)
    with BackgroundAsgiServer(app) as server:
        answer = post(f"{server.url}/bip-sync/", sync_request())
    app.close()
    assert_fault(answer, "SCE010", "Server")
    assert_journalled(engine, answer, "SCE010", "NOT_DELIVERED")


def test_provider_fault_is_passed_on_as_sub_error(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    provider.behaviour = ProviderBehaviour(
        fault=ErrorInfo("GBD-404", "Person not found", datetime(2026, 11, 22, tzinfo=UTC), data="IIN 931002451325")
    )
    answer = post(sync_url, sync_request())
    assert_fault(answer, "SCE011", "Server")
    sub = answer.fault_info().find("subError")
    assert sub is not None
    assert (sub.findtext("errorCode"), sub.findtext("errorMessage"), sub.findtext("errorData")) == (
        "GBD-404", "Person not found", "IIN 931002451325"
    )
    rows = journal_rows(engine, answer.session_id())
    assert [(r.message_type, r.state, r.error_code) for r in rows] == [
        ("REQUEST", "ON_DELIVERY", None),
        ("REQUEST", "DELIVERED", "SCE011"),
        ("RESPONSE", "DELIVERED", "SCE011"),
    ]


def test_body_too_large(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    big = sync_request(data=f"<data>{'x' * 300_000}</data>")
    answer = post(sync_url, big)
    assert_fault(answer, "SCE012", "Client")
    assert_journalled(engine, answer, "SCE012", "REJECTED")
    assert provider.received == []


def test_internal_error_when_the_journal_cannot_be_written(tmp_path, provider_url: str, provider: SyncProviderEmulator) -> None:
    from sqlalchemy import text

    from gateway.db import make_engine, migrate
    from registry.loader import apply_registry, parse_registry
    from tests.conftest import registry_text_for

    url = f"sqlite:///{tmp_path / 'broken.db'}"
    engine = make_engine(url)
    migrate(engine)
    apply_registry(engine, parse_registry(registry_text_for(provider_url)))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE journal_logging"))
    app = create_app(gateway_settings(url), engine=engine)
    with BackgroundAsgiServer(app) as server:
        answer = post(f"{server.url}/bip-sync/", sync_request())
    app.close()
    assert_fault(answer, "SCE909", "Server")
    engine.dispose()
