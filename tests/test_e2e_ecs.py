"""The ecs adapter end to end through the gateway's synchronous SOAP channel: SOAP in, the ecs adapter (delivery
point 40: acceptor-1, connection type 1), the ЕЦС emulator over HTTP, SOAP out.

Every answer is checked against the hub schema and xsd/adapters/ecs.xsd (``adapter_answer``) and against the
emulator's seed data (emulators/ecs.py, docs/adapters/ecs.md). Backend refusals are checked as SOAP faults
with the backend's code in ErrorInfo/subError; token renewal and the 3-second budget are checked as the gateway's
caller sees them.
"""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3
from lxml import etree

from tests.test_adapters_e2e import adapter_answer
from tests.test_sync_faults import assert_fault
from tests.wire import Answer, post, sync_request

ECS = "urn:gateway:adapters:ecs"
SERVICE = "EcsBenefits"
FIXTURES = Path(__file__).parent / "adapters" / "ecs_fixtures"
HTTP = urllib3.PoolManager(retries=False, timeout=10.0)


def q(local: str) -> str:
    return f"{{{ECS}}}{local}"


def ecs_call(url: str, operation: str, inner: str) -> Answer:
    data = f'<data><{operation}Request xmlns="{ECS}">{inner}</{operation}Request></data>'
    return post(url, sync_request(service_id=SERVICE, data=data))


def ecs_answer(url: str, operation: str, inner: str) -> etree._Element:
    element = adapter_answer(ecs_call(url, operation, inner), "ecs")
    assert element.tag == q(f"{operation}Response")
    return element


def status(answer: Answer) -> tuple[str, str]:
    info = answer.payload.find("response/responseInfo/status")
    return info.findtext("code"), info.findtext("message")


def sub_error(answer: Answer, code: str = "SCE011") -> etree._Element:
    """The fault's subError, after checking the fault is ``code`` (a server-side one)."""
    assert_fault(answer, code, "Server")
    sub = answer.fault_info().find("subError")
    assert sub is not None, answer.body[:800]
    return sub


def check(client: str = "<clientCode>AAABBBCCC</clientCode>", service: int = 1, terminal: int = 11) -> str:
    return f"<serviceId>{service}</serviceId><organizationTerminalId>{terminal}</organizationTerminalId>{client}"


def history(client: str = "<clientCode>AAABBBCCC</clientCode>", first: str = "2021-04-01", last: str = "2021-05-01",
            paging: str = "") -> str:
    return f"{client}<dateFrom>{first}</dateFrom><dateTo>{last}</dateTo>{paging}"


def last_body(emulator: Any, method: str) -> Any:
    return emulator.calls_to(method)[-1].body


def emulator_url(backend_servers: dict[str, tuple[Any, str]]) -> str:
    return backend_servers["ecs"][1]


# CheckClientBenefits


@pytest.mark.parametrize(
    ("identifier", "service", "sent"),
    [
        ("<clientCode>AAABBBCCC</clientCode>", 1, {"clientCode": "AAABBBCCC"}),
        ("<cardNumber>9643100000000001</cardNumber><cardSeries>0001</cardSeries>", 2,
         {"cardNumber": "9643100000000001", "cardSeries": "0001"}),
    ],
    ids=["clientCode", "card"],
)
def test_check_client_benefits_finds_the_priority_benefit_and_opens_a_transaction(
    sync_url: str, backends: Any, identifier: str, service: int, sent: dict[str, str]
) -> None:
    ecs = backends["ecs"]
    answer = ecs_call(sync_url, "CheckClientBenefits", check(identifier, service=service))
    element = adapter_answer(answer, "ecs")
    assert element.tag == q("CheckClientBenefitsResponse")
    assert status(answer) == ("OK", "Processed")
    assert element.findtext(q("outcome")) == "BENEFIT_FOUND"
    assert element.findtext(q("resultCode")) == "1"
    assert element.findtext(q("clientId")) == "1"
    assert element.findtext(q("confirmationRequired")) == "true"
    # Holder 1 is a pensioner (10) and a large family (20); 20 comes first in the Project Office's priority.
    benefits = [(b.findtext(q("id")), b.findtext(q("name"))) for b in element.findall(q("benefit"))]
    assert benefits == [("20", "Многодетная семья")]
    transaction_id = int(element.findtext(q("transactionId")))
    assert transaction_id >= 5000
    opened = ecs.transactions[transaction_id]
    assert (opened.holder_id, opened.acceptor, opened.service_id, opened.state) == (1, "acceptor-1", service, "PENDING")
    assert last_body(ecs, "CheckClientBenefits") == {"serviceId": service, "organizationTerminalId": 11, **sent}
    assert ecs.calls_to("CheckClientBenefits")[-1].client_id == "acceptor-1"


@pytest.mark.parametrize(
    ("client_code", "outcome", "code", "meaning", "backend_message"),
    [
        ("DDDEEEFFF", "NO_BENEFIT", "01", "The ЕЦС card holder has no benefit at this acceptor",
         "У владельца карты ЕЦС отсутствует льгота у данного Акцептанта"),
        ("INACTIVE01", "CARD_INACTIVE", "05", "The ЕЦС card is in an inactive status", "Карта ЕЦС имеет неактивный статус"),
    ],
    ids=["no-benefit-01", "card-inactive-05"],
)
def test_check_client_benefits_denial_is_an_answer_not_a_fault(
    sync_url: str, backends: Any, client_code: str, outcome: str, code: str, meaning: str, backend_message: str
) -> None:
    before = len(backends["ecs"].transactions)
    answer = ecs_call(sync_url, "CheckClientBenefits", check(f"<clientCode>{client_code}</clientCode>"))
    element = adapter_answer(answer, "ecs")
    assert element.tag == q("CheckClientBenefitsResponse")
    assert status(answer) == ("OK", meaning)
    assert element.findtext(q("outcome")) == outcome
    assert element.findtext(q("errorCode")) == code
    assert element.findtext(q("errorMessage")) == f"{meaning}: {backend_message}"
    assert element.find(q("transactionId")) is None
    assert len(backends["ecs"].transactions) == before


def test_the_specs_check_request_example_reaches_the_backend_as_written(sync_url: str, backends: Any) -> None:
    """check_request.json (spec §7.4) as XML: the backend receives that very JSON. Its terminal 2 is not
    acceptor-1's, so the backend answers code 07."""
    example = json.loads((FIXTURES / "check_request.json").read_text(encoding="utf-8"))
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in example.items())
    answer = ecs_call(sync_url, "CheckClientBenefits", inner)
    assert sub_error(answer).findtext("errorCode") == "07"
    call = backends["ecs"].calls_to("CheckClientBenefits")[-1]
    assert call.body == example
    assert list(json.loads(call.raw)) == list(example)  # in the spec's field order


# ConfirmTransaction


def test_confirm_transaction_sends_exact_decimals_and_the_backend_records_them(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    found = ecs_answer(sync_url, "CheckClientBenefits", check())
    transaction_id = found.findtext(q("transactionId"))
    benefit = found.find(q("benefit")).findtext(q("id"))
    # 16 significant digits: a trip through a binary float would make it 99999999999999.98.
    price, discounted = "99999999999999.99", "250.50"
    inner = (f"<clientId>{found.findtext(q('clientId'))}</clientId><benefitCategoryId>{benefit}</benefitCategoryId>"
             f"<transactionId>{transaction_id}</transactionId><price>{price}</price><discountedPrice>{discounted}</discountedPrice>")
    element = ecs_answer(sync_url, "ConfirmTransaction", inner)
    assert element.findtext(q("transactionId")) == transaction_id
    assert element.findtext(q("confirmed")) == "true"
    call = ecs.calls_to("ConfirmTransaction")[-1]
    assert f'"price":{price},"discountedPrice":{discounted}'.encode() in call.raw
    assert call.body == {"clientId": 1, "benefitCategoryId": 20, "transactionId": int(transaction_id),
                         "price": Decimal(price), "discountedPrice": Decimal(discounted)}
    recorded = ecs.transactions[int(transaction_id)]
    assert recorded.state == "CONFIRMED"
    assert str(recorded.price) == price and str(recorded.discounted_price) == discounted
    # The confirmed use shows in web service B's history with the amount exactly as confirmed.
    today = datetime.now(UTC).date()
    listed = ecs_answer(sync_url, "GetTransactions",
                        history(first=(today - timedelta(days=1)).isoformat(), last=(today + timedelta(days=1)).isoformat()))
    mine = [t for t in listed.findall(q("transaction")) if t.findtext(q("id")) == transaction_id]
    assert len(mine) == 1
    assert mine[0].findtext(q("discountedPrice")) == discounted
    assert mine[0].findtext(q("organizationShortName")) == "Театр оперы и балета"


def test_confirming_an_unknown_transaction_is_a_provider_fault_with_the_http_status(sync_url: str, backends: Any) -> None:
    inner = "<clientId>1</clientId><benefitCategoryId>20</benefitCategoryId><transactionId>4999999</transactionId>"
    sub = sub_error(ecs_call(sync_url, "ConfirmTransaction", inner))
    assert sub.findtext("errorCode") == "HTTP400"
    assert "Transaction not found" in sub.findtext("errorMessage")
    assert backends["ecs"].calls_to("ConfirmTransaction")[-1].body["transactionId"] == 4999999


# GetOrganizationServices

ACCEPTOR_1_SERVICES = [
    ("1", "Посещение спектакля"), ("2", "Экскурсия по музею"), ("3", "Абонемент в бассейн"),
    *[(str(n), f"Дополнительная услуга {n}") for n in range(101, 110)],
]


def services(element: etree._Element) -> list[tuple[str, str]]:
    return [(s.findtext(q("id")), s.findtext(q("name"))) for s in element.findall(q("service"))]


def page_info(element: etree._Element) -> tuple[str, str, str]:
    return element.findtext(q("totalItems")), element.findtext(q("currentPageIndex")), element.findtext(q("pagesFetched"))


def test_get_organization_services_without_paging_is_one_call_with_the_backends_defaults(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    before = len(ecs.calls_to("GetOrganizationServices"))
    element = ecs_answer(sync_url, "GetOrganizationServices", "")
    assert page_info(element) == ("12", "0", "1")
    assert services(element) == ACCEPTOR_1_SERVICES
    calls = ecs.calls_to("GetOrganizationServices")[before:]
    assert [c.body for c in calls] == [{}]


def test_get_organization_services_one_page(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    before = len(ecs.calls_to("GetOrganizationServices"))
    element = ecs_answer(sync_url, "GetOrganizationServices", "<pageIndex>1</pageIndex><pageSize>5</pageSize>")
    assert page_info(element) == ("12", "1", "1")
    assert services(element) == ACCEPTOR_1_SERVICES[5:10]
    assert [c.body for c in ecs.calls_to("GetOrganizationServices")[before:]] == [{"pageIndex": 1, "pageSize": 5}]


def test_get_organization_services_all_pages_walks_every_page(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    before = len(ecs.calls_to("GetOrganizationServices"))
    element = ecs_answer(sync_url, "GetOrganizationServices", "<pageSize>5</pageSize><allPages>true</allPages>")
    assert page_info(element) == ("12", "2", "3")
    assert services(element) == ACCEPTOR_1_SERVICES
    assert [c.body for c in ecs.calls_to("GetOrganizationServices")[before:]] == [
        {"pageIndex": i, "pageSize": 5} for i in range(3)
    ]


# GetTransactions (web service B)


def test_get_transactions_all_pages_the_docs_example(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    before = len(ecs.calls_to("GetTransactions"))
    element = ecs_answer(sync_url, "GetTransactions", history(paging="<pageSize>10</pageSize><allPages>true</allPages>"))
    assert page_info(element) == ("23", "2", "3")
    items = element.findall(q("transaction"))
    assert [t.findtext(q("id")) for t in items] == [str(n) for n in range(1000, 1023)]
    first = {child.tag.split("}")[1]: child.text for child in items[0]}
    assert first == {
        "id": "1000", "confirmationDate": "2021-04-01T12:31:30.842619Z", "serviceId": "1",
        "serviceName": "Посещение спектакля", "organizationId": "101", "organizationShortName": "Театр оперы и балета",
        "areaId": "1", "areaName": "Якутск", "discountedPrice": "250.50",
    }
    assert items[1].findtext(q("organizationShortName")) == "Цифровой пропуск"
    assert items[22].findtext(q("confirmationDate")) == "2021-04-23T12:31:30.842619Z"
    calls = ecs.calls_to("GetTransactions")[before:]
    assert [c.body for c in calls] == [
        {"clientCode": "AAABBBCCC", "dateFrom": "2021-04-01", "dateTo": "2021-05-01", "pageIndex": i, "pageSize": 10}
        for i in range(3)
    ]
    assert {c.client_id for c in calls} == {"acceptor-1"}


def test_get_transactions_one_page_by_card_with_the_examples_area_short_name(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    ecs.set_switches(area_field="shortName")  # the spec's example writes area.shortName (§12 item 2)
    card = "<cardNumber>9643100000000001</cardNumber><cardSeries>0001</cardSeries>"
    element = ecs_answer(sync_url, "GetTransactions", history(card, paging="<pageIndex>2</pageIndex><pageSize>10</pageSize>"))
    assert page_info(element) == ("23", "2", "1")
    items = element.findall(q("transaction"))
    assert [t.findtext(q("id")) for t in items] == ["1020", "1021", "1022"]
    assert {t.findtext(q("areaName")) for t in items} == {"Якутск"}
    assert last_body(ecs, "GetTransactions") == {
        "cardNumber": "9643100000000001", "cardSeries": "0001", "dateFrom": "2021-04-01", "dateTo": "2021-05-01",
        "pageIndex": 2, "pageSize": 10,
    }


def test_get_transactions_with_dates_reversed_is_refused_before_the_backend(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    before = len(ecs.calls_to("GetTransactions"))
    answer = ecs_call(sync_url, "GetTransactions", history(first="2021-05-01", last="2021-04-01"))
    assert_fault(answer, "SCE001", "Client")
    assert len(ecs.calls_to("GetTransactions")) == before


# Error mapping


@pytest.mark.parametrize(
    ("code", "inner", "switches", "backend_message"),
    [
        ("02", check("<clientCode>ZZZ</clientCode>"), {}, "клиент не найден"),
        ("03", check(), {"force_error_code": 3}, "Ошибка"),
        ("04", check(), {"force_error_code": 4}, "Ошибка"),
        ("06", check(), {"processing_centre_down": True}, "Отсутствует связь с процессинговым центром"),
        ("07", check(terminal=999), {}, "ID участника отсутствует в системе"),
        ("08", check(service=5), {}, "Код типа услуги не найден"),
    ],
    ids=["02-unknown-holder", "03-reserved", "04-reserved", "06-processing-centre", "07-unknown-terminal", "08-unknown-service"],
)
def test_backend_error_codes_are_provider_faults_carrying_the_code(
    sync_url: str, backends: Any, code: str, inner: str, switches: dict[str, Any], backend_message: str
) -> None:
    from gateway.adapters.ecs.codes import APPENDIX_7

    ecs = backends["ecs"]
    ecs.set_switches(**switches)
    before = len(ecs.calls_to("CheckClientBenefits"))
    sub = sub_error(ecs_call(sync_url, "CheckClientBenefits", inner))
    assert sub.findtext("errorCode") == code
    message = sub.findtext("errorMessage")
    assert message.startswith(APPENDIX_7[int(code)].meaning + ": ") and backend_message in message
    assert len(ecs.calls_to("CheckClientBenefits")) == before + 1


def test_a_code_outside_appendix_7_is_passed_on_as_sent(sync_url: str, backends: Any) -> None:
    """error_response.json (the spec's example, errorCode 100) forced as the backend's answer."""
    example = json.loads((FIXTURES / "error_response.json").read_text(encoding="utf-8"))
    backends["ecs"].set_switches(force_error_code=example["errorCode"])
    sub = sub_error(ecs_call(sync_url, "GetOrganizationServices", ""))
    assert sub.findtext("errorCode") == "100"
    assert example["message"] in sub.findtext("errorMessage")


@pytest.mark.parametrize("code", [1, 5])
def test_denial_codes_outside_a_benefit_check_are_faults(sync_url: str, backends: Any, code: int) -> None:
    backends["ecs"].set_switches(force_error_code=code)
    sub = sub_error(ecs_call(sync_url, "GetTransactions", history()))
    assert sub.findtext("errorCode") == f"0{code}"


@pytest.mark.parametrize(
    ("inner", "field"),
    [
        (check("<clientSnils>12345678901</clientSnils>"), "clientSnils"),
        (check() + "<price>100.00</price>", "price"),
    ],
    ids=["snils-is-type-2", "price-is-type-3"],
)
def test_a_field_the_connection_type_may_not_send_is_refused_before_the_backend(
    sync_url: str, backends: Any, inner: str, field: str
) -> None:
    ecs = backends["ecs"]
    ecs_answer(sync_url, "CheckClientBenefits", check())  # a token is in hand, so none would be asked for anyway
    calls, tokens = len(ecs.calls), ecs.token_requests
    answer = ecs_call(sync_url, "CheckClientBenefits", inner)
    assert_fault(answer, "SCE001", "Client")
    assert f"{field} is available only for connection type" in answer.fault_info().findtext("errorData")
    assert len(ecs.calls) == calls and ecs.token_requests == tokens


def test_data_outside_the_payload_schema_is_refused_before_the_backend(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    calls = len(ecs.calls)
    two_identifiers = check("<clientCode>AAABBBCCC</clientCode><clientSnils>12345678901</clientSnils>")
    assert_fault(ecs_call(sync_url, "CheckClientBenefits", two_identifiers), "SCE001", "Client")
    assert_fault(ecs_call(sync_url, "CheckClientBenefits", check("<clientCode>AAA BBB</clientCode>")), "SCE001", "Client")
    assert len(ecs.calls) == calls


def test_a_backend_that_is_down_is_unreachable(sync_url: str, backends: Any) -> None:
    backends["ecs"].set_switches(down=True)
    assert_fault(ecs_call(sync_url, "CheckClientBenefits", check()), "SCE009", "Server")


def test_a_slow_backend_is_a_timeout_after_the_three_second_budget(sync_url: str, backends: Any) -> None:
    ecs_answer(sync_url, "GetOrganizationServices", "")  # warm: the token is cached, only the call is slow
    backends["ecs"].set_switches(delay_seconds=4)
    started = time.monotonic()
    answer = ecs_call(sync_url, "GetOrganizationServices", "")
    elapsed = time.monotonic() - started
    assert_fault(answer, "SCE010", "Server")
    assert 2.5 <= elapsed < 3.9, elapsed


# Tokens


def test_token_revocation_and_expiry_are_renewed_without_the_caller_noticing(
    sync_url: str, backends: Any, backend_servers: dict[str, tuple[Any, str]]
) -> None:
    ecs = backends["ecs"]
    base = emulator_url(backend_servers)
    ecs_answer(sync_url, "GetOrganizationServices", "")  # a valid token is cached
    assert HTTP.request("POST", f"{base}/_emulator/switches", body=json.dumps({"token_ttl_seconds": 2}),
                        headers={"Content-Type": "application/json"}).status == 200
    assert HTTP.request("POST", f"{base}/_emulator/revoke-tokens").status == 200

    # Revoked: the backend answers 401, the adapter asks for a second token and calls again; the caller sees an answer.
    tokens, calls = ecs.token_requests, len(ecs.calls_to("GetOrganizationServices"))
    element = ecs_answer(sync_url, "GetOrganizationServices", "")
    assert services(element) == ACCEPTOR_1_SERVICES
    assert ecs.token_requests == tokens + 1
    retried = ecs.calls_to("GetOrganizationServices")[calls:]
    assert [c.client_id for c in retried] == [None, "acceptor-1"]  # one refused (401), one served
    stats = json.loads(HTTP.request("GET", f"{base}/_emulator/stats").data)
    assert stats["token_requests"] == ecs.token_requests

    # The new token lives 2 s and is renewed half-way through (before it expires): no 401 this time.
    time.sleep(1.1)
    tokens, calls = ecs.token_requests, len(ecs.calls_to("GetOrganizationServices"))
    ecs_answer(sync_url, "GetOrganizationServices", "")
    assert ecs.token_requests == tokens + 1
    assert [c.client_id for c in ecs.calls_to("GetOrganizationServices")[calls:]] == ["acceptor-1"]


def test_a_token_refused_again_after_renewal_is_a_provider_fault(sync_url: str, backends: Any) -> None:
    ecs = backends["ecs"]
    ecs_answer(sync_url, "GetOrganizationServices", "")
    ecs.set_switches(reject_tokens=True)
    tokens, calls = ecs.token_requests, len(ecs.calls_to("GetOrganizationServices"))
    sub = sub_error(ecs_call(sync_url, "GetOrganizationServices", ""))
    assert sub.findtext("errorCode") == "HTTP401"
    assert ecs.token_requests == tokens + 1  # renewed once, not in a loop
    assert len(ecs.calls_to("GetOrganizationServices")) == calls + 2
