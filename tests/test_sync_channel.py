"""The synchronous channel end to end: a client, the gateway and the provider emulator over loopback HTTP."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import zeep
from lxml import etree
from sqlalchemy import Engine

from emulators.sync_provider import SyncProviderEmulator
from tests.wire import (
    SAMPLES,
    assert_wire_valid,
    body_child,
    journal_rows,
    post,
    sync_request,
)

GUID = re.compile(r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")


def forwarded(provider: SyncProviderEmulator) -> etree._Element:
    """The SendMessage the provider received from the gateway (exactly one)."""
    assert len(provider.received) == 1
    return body_child(provider.received[0].body)


def test_zeep_client_from_served_wsdl_gets_the_providers_answer(
    gateway_url: str, provider: SyncProviderEmulator, engine: Engine
) -> None:
    client = zeep.Client(f"{gateway_url}/bip-sync/?wsdl")
    message_id = str(uuid.uuid4())
    result = client.service.SendMessage(
        request={
            "requestInfo": {
                "messageId": message_id,
                "serviceId": "GbdflPersonInfo",
                "messageDate": datetime.now(UTC),
                "sender": {"senderId": "pep", "password": "pep-test-password"},
                "properties": [{"key": "IIN", "value": "931002451325"}],
            },
            "requestData": {"data": "person-request"},
        }
    )
    info = result["responseInfo"]
    assert info["status"]["code"] == "SCSS001"
    assert info["correlationId"] == message_id
    assert GUID.match(info["sessionId"])
    answer = etree.fromstring(result["responseData"]["data"])
    assert answer.findtext("{*}serviceId") == "GbdflPersonInfo"
    assert answer.findtext("{*}echo") == "person-request"

    sent = forwarded(provider)
    assert_wire_valid(sent)
    assert sent.findtext("request/requestInfo/sessionId") == info["sessionId"]
    assert sent.find("request/requestInfo/sender/password") is None, "the password must not reach the provider"
    assert sent.findtext("request/requestInfo/properties/value") == "931002451325"

    rows = journal_rows(engine, info["sessionId"])
    assert [(r.message_type, r.sender, r.recipient, r.state) for r in rows] == [
        ("REQUEST", "pep", "gbdfl", "ON_DELIVERY"),  # durable before the provider was called
        ("REQUEST", "pep", "gbdfl", "DELIVERED"),
        ("RESPONSE", "gbdfl", "pep", "DELIVERED"),
    ]
    forwarding_row, request_row, response_row = rows
    assert forwarding_row.message_id == request_row.message_id == message_id
    assert forwarding_row.sent_at == request_row.sent_at
    assert response_row.message_id == info["messageId"]
    assert all(r.channel == "SYNC" and r.service_id == "GbdflPersonInfo" and r.error_code is None for r in rows)
    assert request_row.received_at <= request_row.sent_at <= response_row.received_at <= response_row.sent_at
    assert request_row.duration_ms > 0


def test_response_is_strict_and_schema_valid(sync_url: str, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request())
    assert answer.status == 200
    payload = answer.payload
    assert payload.tag == "{http://bip.bee.kz/SyncChannel/v10/Types}SendMessageResponse"
    assert_wire_valid(payload)
    info = payload.find("response/responseInfo")
    assert [child.tag for child in info] == ["messageId", "correlationId", "responseDate", "status", "sessionId"]
    assert GUID.match(info.findtext("sessionId"))


def test_alias_endpoint_serves_the_same_channel(gateway_url: str, provider: SyncProviderEmulator) -> None:
    answer = post(f"{gateway_url}/bip-sync-wss-gost/", sync_request())
    assert answer.status == 200
    assert answer.payload.findtext("response/responseInfo/status/code") == "SCSS001"


def test_route_id_selects_the_routes_delivery_point(sync_url: str, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request(service_id="GbdulFullInfo", route_id="GBDUL_UL_SEARCH_p1"))
    assert answer.status == 200
    assert provider.received[0].path == "/provider/routed"


def test_nit_sample_request_passes_through_with_its_data_unchanged(sync_url: str, provider: SyncProviderEmulator) -> None:
    sample = (SAMPLES / "nitec-sample-sync-request-gost.xml").read_bytes()
    answer = post(sync_url, sample)
    assert answer.status == 200, answer.body[:600]
    original = body_child(sample).find("request/requestData/data")
    sent = forwarded(provider).find("request/requestData/data")
    assert sent.text == original.text
    assert sent.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "xs:string"
    assert_wire_valid(forwarded(provider))
    assert_wire_valid(answer.payload)


@pytest.mark.parametrize("sample", ["ncanode-WsseServiceTest-unsigned.xml", "ncanode-WsseServiceTest-signed-rsa-sha256.xml"])
def test_ncanode_samples_with_qualified_data_are_accepted(sync_url: str, provider: SyncProviderEmulator, sample: str) -> None:
    answer = post(sync_url, (SAMPLES / sample).read_bytes())
    assert answer.status == 200, answer.body[:600]
    data = forwarded(provider).find("request/requestData/data")
    assert data.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "cs:Request"
    assert data.nsmap["cs"] == "http://message.persistence.interactive.nat"
    assert data.findtext("iin") == "931002451325"
