"""The ecs adapter against the ЕЦС emulator over real HTTP: every operation, the connection-type field rules,
Appendix 7 codes one by one, paging."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from emulators.ecs import EcsEmulator, EcsSwitches, make_emulator
from gateway.serving import BackgroundServer
from gateway.adapters.base import AdapterAnswer
from gateway.adapters.ecs import create
from gateway.adapters.payload import PayloadSchema
from gateway.outbound.async_client import AsyncHttpClient, HttpAnswer
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread

NS = "urn:gateway:adapters:ecs"
SCHEMA = PayloadSchema.of("ecs")
CREDENTIALS = {
    "acceptor-1": ("secret-1", "1"),
    "acceptor-2": ("secret-2", "2"),
    "acceptor-3": ("secret-3", "3"),
}


def request(name: str, *children: tuple[str, object]) -> etree._Element:
    """A payload request element with leaf children in the given order."""
    element = etree.Element(f"{{{NS}}}{name}", nsmap={None: NS})
    for local, value in children:
        etree.SubElement(element, f"{{{NS}}}{local}").text = str(value)
    return element


def leaf(element: etree._Element, local: str) -> str | None:
    return element.findtext(f"{{{NS}}}{local}")


def items(element: etree._Element, local: str) -> list[dict[str, str]]:
    """Each repeated ``local`` child as {child local name: text}."""
    return [
        {etree.QName(child).localname: child.text or "" for child in item}
        for item in element.findall(f"{{{NS}}}{local}")
    ]


def valid(answer: AdapterAnswer) -> etree._Element:
    """The answer's data, after checking it against the payload schema independently of the adapter."""
    SCHEMA.check_answer(answer.data)
    assert answer.pending is None
    return answer.data


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[EcsEmulator, str]]:
    emulator = make_emulator()
    with BackgroundServer(emulator) as server:
        yield emulator, server.url


@pytest.fixture
def emulator(backend: tuple[EcsEmulator, str]) -> EcsEmulator:
    backend[0].switches = EcsSwitches()
    return backend[0]


@pytest.fixture
def url(backend: tuple[EcsEmulator, str], emulator: EcsEmulator) -> str:
    return backend[1]


@dataclass(frozen=True)
class LoopedHttp:
    """The backends' client and the loop the adapters made with it run on."""

    client: AsyncHttpClient
    loop: LoopThread

    def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str], deadline: float) -> HttpAnswer:
        """One request from test code, sent on the loop."""
        return self.loop.run(self.client.request(method, url, body, headers, deadline))


@pytest.fixture
def http(loop_thread: LoopThread) -> Iterator[LoopedHttp]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield LoopedHttp(client, loop_thread)
    loop_thread.run(client.close())


def blocking(options: Mapping[str, str], http: LoopedHttp) -> BlockingAdapter:
    """The adapter ``options`` make, called from test code and run on the loop."""
    return BlockingAdapter(create(options, http.client), http.loop)


def make_adapter(url: str, http: LoopedHttp, client: str = "acceptor-1", **extra: str) -> BlockingAdapter:
    secret, connection_type = CREDENTIALS[client]
    options = {"baseUrl": url, "clientId": client, "clientSecret": secret, "connectionType": connection_type}
    return blocking({**options, **extra}, http)


def deadline(seconds: float = 5) -> float:
    return time.monotonic() + seconds


def check(adapter: BlockingAdapter, *identifier: tuple[str, object], service: int = 1, terminal: int = 11) -> etree._Element:
    data = request("CheckClientBenefitsRequest", ("serviceId", service), ("organizationTerminalId", terminal), *identifier)
    return valid(adapter.handle(data, deadline()))


def fault(adapter: BlockingAdapter, data: etree._Element) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        adapter.handle(data, deadline())
    return caught.value


# Web service A: CheckClientBenefits and ConfirmTransaction


def test_check_then_confirm_records_the_exact_amounts(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    answer = check(adapter, ("clientCode", "AAABBBCCC"))
    assert leaf(answer, "outcome") == "BENEFIT_FOUND"
    assert leaf(answer, "resultCode") == "1"
    assert leaf(answer, "clientId") == "1"
    assert leaf(answer, "confirmationRequired") == "true"
    # Holder 1 is a pensioner (10) and a large family (20); 20 comes first in the priority order.
    assert items(answer, "benefit") == [{"id": "20", "name": "Многодетная семья"}]
    transaction_id = int(leaf(answer, "transactionId") or 0)
    assert emulator.calls_to("CheckClientBenefits")[-1].body == {"serviceId": 1, "organizationTerminalId": 11, "clientCode": "AAABBBCCC"}
    assert emulator.transactions[transaction_id].state == "PENDING"

    confirm = request(
        "ConfirmTransactionRequest",
        ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", transaction_id),
        ("price", "500.00"), ("discountedPrice", "250.50"),
    )
    confirmed = valid(adapter.handle(confirm, deadline()))
    assert (leaf(confirmed, "transactionId"), leaf(confirmed, "confirmed")) == (str(transaction_id), "true")
    stored = emulator.transactions[transaction_id]
    assert (stored.state, stored.price, stored.discounted_price) == ("CONFIRMED", Decimal("500.00"), Decimal("250.50"))
    # The amounts went on the wire digit for digit, never through a float.
    raw = emulator.calls_to("ConfirmTransaction")[-1].raw
    assert b'"price":500.00' in raw and b'"discountedPrice":250.50' in raw


def test_a_repeated_confirmation_is_accepted_once_recorded(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    transaction_id = leaf(check(adapter, ("cardNumber", "9643100000000001"), ("cardSeries", "0001")), "transactionId")
    confirm = request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", transaction_id))
    adapter.handle(confirm, deadline())
    adapter.handle(confirm, deadline())
    assert emulator.transactions[int(transaction_id or 0)].confirmations == 2
    assert emulator.transactions[int(transaction_id or 0)].state == "CONFIRMED"


def test_connection_type_2_checks_by_snils(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http, "acceptor-2")
    answer = check(adapter, ("clientSnils", "12345678901"), service=4, terminal=21)
    assert leaf(answer, "outcome") == "BENEFIT_FOUND"
    assert items(answer, "benefit") == [{"id": "10", "name": "Пенсионер"}]
    assert emulator.calls_to("CheckClientBenefits")[-1].client_id == "acceptor-2"


def test_connection_type_3_sends_the_price_and_needs_no_confirmation(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http, "acceptor-3")
    answer = check(adapter, ("clientCode", "DDDEEEFFF"), ("price", "1999.90"), service=5, terminal=31)
    assert leaf(answer, "confirmationRequired") == "false"
    stored = emulator.transactions[int(leaf(answer, "transactionId") or 0)]
    assert (stored.state, stored.price) == ("CONFIRMED", Decimal("1999.90"))
    assert b'"price":1999.90' in emulator.calls_to("CheckClientBenefits")[-1].raw


@pytest.mark.parametrize(
    ("client", "identifier", "refused_field"),
    [
        ("acceptor-2", [("clientCode", "AAABBBCCC")], "clientCode"),
        ("acceptor-2", [("cardNumber", "9643100000000001"), ("cardSeries", "0001")], "cardNumber"),
        ("acceptor-1", [("clientSnils", "12345678901")], "clientSnils"),
        ("acceptor-1", [("clientCode", "AAABBBCCC"), ("price", "10.00")], "price"),
    ],
)
def test_fields_a_connection_type_may_not_send_are_refused_before_the_backend(
    url: str, http: LoopedHttp, emulator: EcsEmulator, client: str, identifier: list[tuple[str, object]], refused_field: str
) -> None:
    adapter = make_adapter(url, http, client)
    before = len(emulator.calls_to("CheckClientBenefits"))
    error = fault(adapter, request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 11), *identifier))
    assert error.error is ErrorCode.MALFORMED_MESSAGE
    assert refused_field in (error.data or "")
    assert len(emulator.calls_to("CheckClientBenefits")) == before


def test_the_emulator_itself_refuses_a_field_of_another_connection_type(url: str, http: LoopedHttp) -> None:
    """Proves the emulator enforces §3.3 too (an adapter with a wrong connectionType setting meets 403)."""
    adapter = make_adapter(url, http, "acceptor-2", connectionType="1")
    error = fault(adapter, request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 21), ("clientCode", "AAABBBCCC")))
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == "HTTP403"


def test_confirmation_is_not_offered_to_connection_type_3(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http, "acceptor-3")
    before = len(emulator.calls)
    error = fault(adapter, request("ConfirmTransactionRequest", ("clientId", 2), ("benefitCategoryId", 40), ("transactionId", 5000)))
    assert error.error is ErrorCode.UNSUPPORTED_OPERATION
    assert len(emulator.calls) == before


def test_data_against_the_schema_is_refused_before_the_backend(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http, "acceptor-2")
    before = len(emulator.calls)
    for data in (
        request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 21), ("clientSnils", "1234567890")),
        request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 21)),
        request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", 1), ("price", "1.005")),
        request("CheckClientBenefitsResponse", ("outcome", "NO_BENEFIT"), ("errorCode", "01"), ("errorMessage", "x")),
    ):
        assert fault(adapter, data).error is ErrorCode.MALFORMED_MESSAGE
    assert len(emulator.calls) == before


# Appendix 7 codes, one by one


@pytest.mark.parametrize(
    ("code_client", "outcome", "code"),
    [("DDDEEEFFF", "NO_BENEFIT", "01"), ("INACTIVE01", "CARD_INACTIVE", "05")],
)
def test_no_benefit_and_inactive_card_are_answers(url: str, http: LoopedHttp, code_client: str, outcome: str, code: str) -> None:
    answer_data = make_adapter(url, http).handle(
        request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 11), ("clientCode", code_client)),
        deadline(),
    )
    answer = valid(answer_data)
    assert (leaf(answer, "outcome"), leaf(answer, "errorCode")) == (outcome, code)
    assert leaf(answer, "transactionId") is None
    assert answer_data.status_code == "OK"


@pytest.mark.parametrize(
    ("switches", "service", "terminal", "client_code", "sub_code"),
    [
        ({}, 1, 11, "ZZZ", "02"),
        ({"force_error_code": 3}, 1, 11, "AAABBBCCC", "03"),
        ({"force_error_code": 4}, 1, 11, "AAABBBCCC", "04"),
        ({"processing_centre_down": True}, 1, 11, "AAABBBCCC", "06"),
        ({}, 1, 999, "AAABBBCCC", "07"),
        ({}, 5, 11, "AAABBBCCC", "08"),
        ({"force_error_code": 100}, 1, 11, "AAABBBCCC", "100"),
    ],
)
def test_refusals_are_provider_faults_carrying_the_backend_code(
    url: str, http: LoopedHttp, emulator: EcsEmulator, switches: dict[str, Any], service: int, terminal: int, client_code: str, sub_code: str
) -> None:
    emulator.set_switches(**switches)
    data = request("CheckClientBenefitsRequest", ("serviceId", service), ("organizationTerminalId", terminal), ("clientCode", client_code))
    error = fault(make_adapter(url, http), data)
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == sub_code


def test_a_refused_confirmation_carries_the_backend_message(url: str, http: LoopedHttp) -> None:
    error = fault(
        make_adapter(url, http),
        request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", 987654)),
    )
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None
    assert error.sub_error.code == "HTTP400" and "Transaction not found" in error.sub_error.message


def test_an_unconfirmed_transaction_expires(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    transaction_id = leaf(check(adapter, ("clientCode", "AAABBBCCC")), "transactionId")
    emulator.set_switches(pending_ttl_seconds=0)
    error = fault(adapter, request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", transaction_id)))
    assert error.sub_error is not None and "deleted" in error.sub_error.message
    assert emulator.transactions[int(transaction_id or 0)].state == "DELETED"


# Paging


def test_one_page_of_services(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    answer = valid(make_adapter(url, http).handle(request("GetOrganizationServicesRequest", ("pageIndex", 1), ("pageSize", 5)), deadline()))
    assert [item["id"] for item in items(answer, "service")] == ["103", "104", "105", "106", "107"]
    assert (leaf(answer, "totalItems"), leaf(answer, "currentPageIndex"), leaf(answer, "pagesFetched")) == ("12", "1", "1")
    assert emulator.calls_to("GetOrganizationServices")[-1].body == {"pageIndex": 1, "pageSize": 5}


def test_all_pages_of_services(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    before = len(emulator.calls_to("GetOrganizationServices"))
    answer = valid(make_adapter(url, http).handle(request("GetOrganizationServicesRequest", ("pageSize", 5), ("allPages", "true")), deadline()))
    services = items(answer, "service")
    assert [item["id"] for item in services] == ["1", "2", "3", *(str(number) for number in range(101, 110))]
    assert services[0]["name"] == "Посещение спектакля"
    assert (leaf(answer, "totalItems"), leaf(answer, "currentPageIndex"), leaf(answer, "pagesFetched")) == ("12", "2", "3")
    pages = [call.body for call in emulator.calls_to("GetOrganizationServices")[before:]]
    assert pages == [{"pageIndex": 0, "pageSize": 5}, {"pageIndex": 1, "pageSize": 5}, {"pageIndex": 2, "pageSize": 5}]


def test_all_pages_stops_at_max_pages(url: str, http: LoopedHttp) -> None:
    adapter = make_adapter(url, http, maxPages="2")
    answer = valid(adapter.handle(request("GetOrganizationServicesRequest", ("pageSize", 5), ("allPages", "1")), deadline()))
    assert len(items(answer, "service")) == 10
    assert (leaf(answer, "totalItems"), leaf(answer, "currentPageIndex"), leaf(answer, "pagesFetched")) == ("12", "1", "2")


# Web service B


def history_adapter(url: str, http: LoopedHttp) -> BlockingAdapter:
    return make_adapter(url, http, historyClientId="history-1", historyClientSecret="secret-h")


def test_transactions_history_walks_every_page(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    before = len(emulator.calls_to("GetTransactions"))
    data = request(
        "GetTransactionsRequest",
        ("clientCode", "AAABBBCCC"), ("dateFrom", "2021-04-01"), ("dateTo", "2021-05-01"), ("pageSize", 10), ("allPages", "true"),
    )
    answer = valid(history_adapter(url, http).handle(data, deadline()))
    transactions = items(answer, "transaction")
    assert [int(item["id"]) for item in transactions] == list(range(1000, 1023))
    assert transactions[0] == {
        "id": "1000",
        "confirmationDate": "2021-04-01T12:31:30.842619Z",
        "serviceId": "1",
        "serviceName": "Посещение спектакля",
        "organizationId": "101",
        "organizationShortName": "Театр оперы и балета",
        "areaId": "1",
        "areaName": "Якутск",
        "discountedPrice": "250.50",
    }
    assert (leaf(answer, "totalItems"), leaf(answer, "pagesFetched")) == ("23", "3")
    calls = emulator.calls_to("GetTransactions")[before:]
    # Web service B is called as its own participant, with the table's field names (not the example's).
    assert {call.client_id for call in calls} == {"history-1"}
    assert calls[0].body == {"clientCode": "AAABBBCCC", "dateFrom": "2021-04-01", "dateTo": "2021-05-01", "pageIndex": 0, "pageSize": 10}


def test_transactions_by_social_card_with_area_short_name(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    emulator.set_switches(area_field="shortName")
    data = request(
        "GetTransactionsRequest",
        ("cardNumber", "9643100000000001"), ("cardSeries", "0001"), ("dateFrom", "2021-04-05"), ("dateTo", "2021-04-06"),
    )
    answer = valid(history_adapter(url, http).handle(data, deadline()))
    assert [(item["id"], item["areaName"]) for item in items(answer, "transaction")] == [("1004", "Якутск"), ("1005", "Якутск")]


def test_transactions_of_an_unknown_holder(url: str, http: LoopedHttp) -> None:
    data = request("GetTransactionsRequest", ("clientCode", "ZZZ"), ("dateFrom", "2021-04-01"), ("dateTo", "2021-05-01"))
    error = fault(history_adapter(url, http), data)
    assert error.sub_error is not None and error.sub_error.code == "02"


def test_an_inverted_interval_is_refused_before_the_backend(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    before = len(emulator.calls)
    data = request("GetTransactionsRequest", ("clientCode", "AAABBBCCC"), ("dateFrom", "2021-05-01"), ("dateTo", "2021-04-01"))
    assert fault(history_adapter(url, http), data).error is ErrorCode.MALFORMED_MESSAGE
    assert len(emulator.calls) == before


def test_service_a_credentials_without_organization_scope_cannot_check(url: str, http: LoopedHttp) -> None:
    adapter = blocking({"baseUrl": url, "clientId": "history-1", "clientSecret": "secret-h", "connectionType": "1"}, http)
    error = fault(adapter, request("GetOrganizationServicesRequest"))
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == "invalid_scope"


# Emulator control over HTTP


def test_switches_over_http(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    body = json.dumps({"force_error_code": 8, "area_field": "both"}).encode()
    assert http.request("POST", f"{url}/_emulator/switches", body, {"Content-Type": "application/json"}, deadline()).status == 200
    read = http.request("GET", f"{url}/_emulator/switches", None, {}, deadline())
    assert json.loads(read.body)["force_error_code"] == 8
    assert emulator.switches.area_field == "both"
    refused = http.request("POST", f"{url}/_emulator/switches", b'{"no_such": 1}', {}, deadline())
    assert refused.status == 400
    stats = json.loads(http.request("GET", f"{url}/_emulator/stats", None, {}, deadline()).body)
    assert stats["token_requests"] == emulator.token_requests


def test_poll_has_nothing_to_do(url: str, http: LoopedHttp) -> None:
    with pytest.raises(GatewayError) as caught:
        make_adapter(url, http).poll({}, 1, deadline())
    assert caught.value.error is ErrorCode.INTERNAL_ERROR
