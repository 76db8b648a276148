"""The payments adapter against the processing-centre emulator over real HTTP on loopback: every operation,
the three payment schemes, the error mapping, and the finality rules (pending payments polled until final,
paid at most once)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.serving import BackgroundServer
from emulators.payments import PaymentsEmulator, make_emulator
from emulators.payments_seed import DEMO_TOKEN
from gateway.adapters.base import AdapterAnswer
from gateway.adapters.payload import PayloadSchema
from gateway.adapters.payments import create, messages
from gateway.adapters.payments.jsonwire import loads
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread

NS = "urn:gateway:adapters:payments"
FIXTURES = Path(__file__).parent / "payments_fixtures"
SCHEMA = PayloadSchema.of("payments")
# The spec's basic check / pay example as the adapter must write it: amounts as literals with two places.
SPEC_BODY_A = (b'{"serviceId":"P1011","account":"7770017711","agentTransactionId":1233355,'
               b'"agentTransactionDate":"2015-02-17T16:48:37","amountTo":200.00,"amountFrom":200.00}')


@pytest.fixture
def emulator() -> PaymentsEmulator:
    return make_emulator()


@pytest.fixture
def server(emulator: PaymentsEmulator) -> Iterator[BackgroundServer]:
    with BackgroundServer(emulator) as running:
        yield running


@pytest.fixture
def http(loop_thread: LoopThread) -> Iterator[AsyncHttpClient]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield client
    loop_thread.run(client.close())


@pytest.fixture
def adapter(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread) -> BlockingAdapter:
    return BlockingAdapter(create(
        {"baseUrl": server.url, "token": DEMO_TOKEN, "timeoutSeconds": "3", "pollSeconds": "0.5", "maxPollSeconds": "3"},
        http,
    ), loop_thread)


def element(local: str, *children: tuple[str, Any], extras: dict[str, str] | None = None) -> etree._Element:
    """A request ``data`` element with simple children in order, then ``extra`` elements."""
    root = etree.Element(f"{{{NS}}}{local}", nsmap={None: NS})
    for name, value in children:
        etree.SubElement(root, f"{{{NS}}}{name}").text = str(value)
    for name, value in (extras or {}).items():
        etree.SubElement(root, f"{{{NS}}}extra", name=name).text = value
    return root


def payment(local: str, service: str, account: str, atid: int | None, amount: str | None, *more: tuple[str, str],
            key: str | None = None, amount_from: str | None = None, extras: dict[str, str] | None = None) -> etree._Element:
    identity = ("agentTransactionId", atid) if key is None else ("paymentKey", key)
    children: list[tuple[str, Any]] = [("serviceId", service), ("account", account), identity,
                                       ("agentTransactionDate", "2015-02-17T16:48:37")]
    if amount is not None:
        children.append(("amountTo", amount))
    if amount_from is not None:
        children.append(("amountFrom", amount_from))
    return element(local, *children, *more, extras=extras)


def text(answer: etree._Element, path: str) -> str | None:
    found = answer.find(path, {"p": NS})
    return None if found is None else found.text


def valid(answer: AdapterAnswer) -> etree._Element:
    SCHEMA.check_answer(answer.data)
    return answer.data


def deadline() -> float:
    return time.monotonic() + 5


def fault_code(call: Any) -> tuple[ErrorCode, str | None]:
    with pytest.raises(GatewayError) as caught:
        call()
    sub = caught.value.sub_error
    return caught.value.error, None if sub is None else sub.code


def sent_bodies(emulator: PaymentsEmulator, method: str) -> list[dict[str, Any]]:
    return [loads(r.body) for r in emulator.requests_to(method)]


# ----- options -----


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({}, "baseUrl"),
        ({"baseUrl": "ftp://host"}, "baseUrl"),
        ({"baseUrl": "http://h", "tokenHeader": "bad header"}, "tokenHeader"),
        ({"baseUrl": "http://h", "pollSeconds": "10", "maxPollSeconds": "5"}, "maxPollSeconds"),
        ({"baseUrl": "http://h", "timeoutSeconds": "soon"}, "timeoutSeconds"),
        ({"baseUrl": "http://h", "clientSecret": "x"}, "clientSecret"),
    ],
)
def test_create_refuses_wrong_options(options: dict[str, str], complaint: str, http: AsyncHttpClient) -> None:
    with pytest.raises(ValueError, match=complaint):
        create(options, http)


def test_option_errors_never_echo_the_token(http: AsyncHttpClient) -> None:
    with pytest.raises(ValueError) as caught:
        create({"baseUrl": "nope", "token": "s3cret-token-value"}, http)
    assert "s3cret-token-value" not in str(caught.value)


# ----- services, service, balance, operatorByPhone -----


def test_services_lists_the_catalogue_with_schemes(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    answer = valid(adapter.handle(element("ServicesRequest"), deadline()))
    ids = [e.text for e in answer.findall("p:service/p:serviceId", {"p": NS})]
    assert ids == ["P1011", "P1012", "P0005", "P0006", "P2001", "P0155"]
    assert text(answer, "p:service[p:serviceId='P0005']/p:scheme") == "complex"
    assert text(answer, "p:service[p:serviceId='P0006']/p:scheme") == "withChoice"
    assert text(answer, "p:service[p:serviceId='P1011']/p:input/p:regexp") == r"^\d{10}$"
    request = emulator.requests_to("services")[0]
    assert request.headers["Authorization"] == f"Bearer {DEMO_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"


def test_services_read_under_the_cyrillic_key_too(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(services_key="servi\u0441es")
    answer = valid(adapter.handle(element("ServicesRequest"), deadline()))
    assert len(answer.findall("p:service", {"p": NS})) == 6
    raw = json.loads((FIXTURES / "services_response.json").read_text("utf-8"))
    parsed = messages.services_answer(raw, "ServicesResponse")
    SCHEMA.check_answer(parsed)
    assert text(parsed, "p:service[p:serviceId='P1012']/p:display[3]/p:regexp") == r"^\d{1,9}\.\d{2}$"


def test_service_describes_one_service(adapter: BlockingAdapter) -> None:
    answer = valid(adapter.handle(element("ServiceRequest", ("serviceId", "P1012")), deadline()))
    assert answer.tag == f"{{{NS}}}ServiceResponse"
    assert [e.text for e in answer.findall("p:service/p:input/p:name", {"p": NS})] == ["account", "ev_account1"]
    assert [e.text for e in answer.findall("p:service/p:display/p:name", {"p": NS})] == ["fio", "info", "fixedAmount"]


def test_unknown_service_is_a_provider_fault_130(adapter: BlockingAdapter) -> None:
    assert fault_code(lambda: adapter.handle(element("ServiceRequest", ("serviceId", "P9999")), deadline())) == (
        ErrorCode.PROVIDER_FAULT, "130")


def test_balance(adapter: BlockingAdapter) -> None:
    answer = valid(adapter.handle(element("BalanceRequest"), deadline()))
    assert text(answer, "p:agentId") == "4"
    assert text(answer, "p:agentName") == "Наименоване Агента"
    assert text(answer, "p:balance") == "509455.9000"
    assert text(answer, "p:currency") == "KZT"


def test_operator_by_phone(adapter: BlockingAdapter) -> None:
    found = valid(adapter.handle(element("OperatorByPhoneRequest", ("phoneNumber", "7777731414")), deadline()))
    assert (text(found, "p:result"), text(found, "p:serviceId")) == ("0", "P1011")
    ported = valid(adapter.handle(element("OperatorByPhoneRequest", ("phoneNumber", "7012345678")), deadline()))
    assert text(ported, "p:serviceId") == "P1011"
    unknown = valid(adapter.handle(element("OperatorByPhoneRequest", ("phoneNumber", "7001234567")), deadline()))
    assert (text(unknown, "p:result"), text(unknown, "p:serviceId")) == ("5", None)
    assert fault_code(lambda: adapter.handle(element("OperatorByPhoneRequest", ("phoneNumber", "12")), deadline())) == (
        ErrorCode.PROVIDER_FAULT, "4")


# ----- check: the three schemes -----


def test_check_simple_sends_the_spec_body(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    answer = valid(adapter.handle(
        payment("CheckRequest", "P1011", "7770017711", 1233355, "200", amount_from="200.00"), deadline()))
    assert text(answer, "p:result") == "0"
    assert text(answer, "p:final") == "true"
    assert text(answer, "p:scheme") == "simple"
    assert text(answer, "p:transactionId") == "900000000000000001"  # 18 digits survive exactly
    raw = emulator.requests_to("check")[0].body
    assert raw == SPEC_BODY_A
    assert loads(raw) == loads((FIXTURES / "check_request_a.json").read_bytes())


def test_check_with_identification_sends_payer(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    request = payment("CheckRequest", "P1011", "7770017711", 1233355, "200.00", amount_from="200.00")
    etree.SubElement(request, f"{{{NS}}}identityCard").text = "123456789"
    etree.SubElement(request, f"{{{NS}}}fullName").text = "Иванов Иван Иванович"
    valid(adapter.handle(request, deadline()))
    fixture = loads((FIXTURES / "check_request_b.json").read_bytes())
    assert sent_bodies(emulator, "check")[0] == fixture


def test_check_with_choice_returns_contracts(adapter: BlockingAdapter) -> None:
    answer = valid(adapter.handle(payment("CheckRequest", "P0006", "931002451325", 77, None), deadline()))
    assert text(answer, "p:scheme") == "withChoice"
    contracts = answer.findall("p:contract", {"p": NS})
    assert [text(c, "p:contractId") for c in contracts] == ["000000587", "000000588", "000000589"]
    assert text(contracts[0], "p:contractNumber") == "1/00-Ф"
    assert text(contracts[1], "p:contractSum") == "2000.00"
    assert text(contracts[2], "p:contractDate") == "2020-02-17T00:00:00"


def test_check_complex_returns_the_invoice(adapter: BlockingAdapter) -> None:
    answer = valid(adapter.handle(payment("CheckRequest", "P0005", "1000000001", 78, None), deadline()))
    assert text(answer, "p:scheme") == "complex"
    assert text(answer, "p:invoice/p:formedDate") == "2020-02-01T00:00:00"
    services = answer.findall("p:invoice/p:service", {"p": NS})
    assert [text(s, "p:subServiceId") for s in services] == ["36", "13", "2"]
    assert text(services[0], "p:paySum") == "359.8"
    assert text(services[0], "p:isMeter") == "true"


def test_check_with_displays_and_extras(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    answer = valid(adapter.handle(
        payment("CheckRequest", "P1012", "1234567890", 79, None, extras={"account1": "test@gmail.com"}), deadline()))
    assert text(answer, "p:display[@name='fixedAmount']") == "20000.00"
    assert text(answer, "p:display[@name='fio']") == "Test fio"
    assert sent_bodies(emulator, "check")[0]["extras"] == {"account1": "test@gmail.com"}


def test_check_international_provider_shows_conversion(adapter: BlockingAdapter) -> None:
    answer = valid(adapter.handle(payment("CheckRequest", "P2001", "1234567890", 80, "840.00"), deadline()))
    assert text(answer, "p:conversion/p:currency") == "USD"
    assert text(answer, "p:conversion/p:rate") == "0.0020833333"
    assert text(answer, "p:conversion/p:finalAmount") == "1.75"


def test_spec_answers_parse_into_valid_payloads() -> None:
    for name, local in [("check_contracts_response", "contract"), ("check_invoice_response", "invoice"),
                        ("check_displays_response", "display"), ("check_conversion_response", "conversion")]:
        reply = loads((FIXTURES / f"{name}.json").read_bytes())
        answer = messages.check_answer(reply["agentTransactionId"], reply, True)
        SCHEMA.check_answer(answer)
        assert answer.find(f"p:{local}", {"p": NS}) is not None, name
    pay = loads((FIXTURES / "pay_response.json").read_bytes())
    answer = messages.pay_answer(pay["agentTransactionId"], pay, True)
    SCHEMA.check_answer(answer)
    assert text(answer, "p:statusDate") == "2020-10-19T20:19:24.940"
    balance = messages.balance_answer(loads((FIXTURES / "balance_response.json").read_bytes()))
    SCHEMA.check_answer(balance)
    assert text(balance, "p:balance") == "509455.9000"


@pytest.mark.parametrize(
    ("service", "account", "amount", "extras", "code"),
    [
        ("P1011", "77700177", None, None, "4"),
        ("P1011", "7770000005", None, None, "5"),
        ("P1011", "7770000007", None, None, "7"),
        ("P1011", "7770000008", None, None, "8"),
        ("P9999", "7770017711", None, None, "130"),
        ("P0155", "123456", None, None, "155"),
        ("P1012", "1234567890", None, None, "202"),
        ("P1011", "7770017711", "99.99", None, "241"),
        ("P1011", "7770017711", "100000.01", None, "242"),
        ("P1011", "7770000300", None, None, "300"),
        ("P1012", "1234567891", None, {"account1": "x"}, "5"),
    ],
)
def test_check_refusals_map_to_provider_fault(adapter: BlockingAdapter, service: str, account: str,
                                              amount: str | None, extras: dict[str, str] | None, code: str) -> None:
    request = payment("CheckRequest", service, account, 81, amount, extras=extras)
    assert fault_code(lambda: adapter.handle(request, deadline())) == (ErrorCode.PROVIDER_FAULT, code)


def test_malformed_data_is_refused_before_the_backend(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    no_amount = payment("PayRequest", "P1011", "7770017711", 82, None)
    assert fault_code(lambda: adapter.handle(no_amount, deadline()))[0] is ErrorCode.MALFORMED_MESSAGE
    three_places = payment("PayRequest", "P1011", "7770017711", 82, "200.001")
    assert fault_code(lambda: adapter.handle(three_places, deadline()))[0] is ErrorCode.MALFORMED_MESSAGE
    answer_as_request = element("OperatorByPhoneResponse", ("phoneNumber", "1"), ("result", "0"))
    assert fault_code(lambda: adapter.handle(answer_as_request, deadline()))[0] is ErrorCode.MALFORMED_MESSAGE
    assert emulator.received == []


# ----- pay: the three schemes -----


def test_pay_simple_after_check_pays_once(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    check = valid(adapter.handle(payment("CheckRequest", "P1011", "7770017711", 1233355, "200.00"), deadline()))
    answer = adapter.handle(payment("PayRequest", "P1011", "7770017711", 1233355, "200", amount_from="200.00"),
                            deadline())
    data = valid(answer)
    assert (answer.status_code, answer.pending) == ("OK", None)
    assert text(data, "p:result") == "0" and text(data, "p:final") == "true"
    assert text(data, "p:transactionId") == text(check, "p:transactionId")  # the check's number is reused
    assert text(data, "p:transactionDate") is not None and text(data, "p:statusDate") is not None
    assert emulator.requests_to("pay")[0].body == SPEC_BODY_A
    assert loads(SPEC_BODY_A) == loads((FIXTURES / "pay_request_a.json").read_bytes())
    assert len(emulator.payments()) == 1
    assert emulator.balance == Decimal("509255.9000")


def test_pay_with_choice_sends_the_chosen_contract(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    request = payment("PayRequest", "P0006", "931002451325", 90, "2000.00", ("contractId", "000000588"))
    data = valid(adapter.handle(request, deadline()))
    assert text(data, "p:result") == "0"
    assert sent_bodies(emulator, "pay")[0]["extras"] == {"contractId": "000000588"}
    wrong = payment("PayRequest", "P0006", "931002451325", 91, "2000.00", ("contractId", "000000999"))
    assert fault_code(lambda: adapter.handle(wrong, deadline())) == (ErrorCode.PROVIDER_FAULT, "202")


def _receipt(atid: int, account: str, total: str, items: list[tuple[str, str, str | None]]) -> etree._Element:
    request = payment("PayRequest", "P0005", account, atid, total, amount_from=total)
    for sub_id, amount, last_count in items:
        item = etree.SubElement(request, f"{{{NS}}}extraService")
        etree.SubElement(item, f"{{{NS}}}subServiceId").text = sub_id
        etree.SubElement(item, f"{{{NS}}}amount").text = amount
        if last_count is not None:
            etree.SubElement(item, f"{{{NS}}}lastCount").text = last_count
    return request


def test_pay_complex_sends_receipt_items(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    request = _receipt(92, "1000000001", "450.00", [("36", "100", "11236"), ("13", "150.00", None), ("2", "200.00", None)])
    assert text(valid(adapter.handle(request, deadline())), "p:result") == "0"
    raw = emulator.requests_to("pay")[0].body
    assert b'"extraServices":[{"subServiceId":"36","lastCount":"11236","amount":100.00},' in raw
    assert b'"amountTo":450.00,"amountFrom":450.00' in raw


def test_pay_complex_amounts_must_add_up(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    request = _receipt(93, "1000000001", "450.00", [("36", "100.00", None), ("13", "150.00", None)])
    assert fault_code(lambda: adapter.handle(request, deadline()))[0] is ErrorCode.MALFORMED_MESSAGE
    assert emulator.requests_to("pay") == []


def test_pay_complex_item_limits(adapter: BlockingAdapter) -> None:
    too_much = _receipt(94, "1000000002", "600.00", [("36", "600.00", None)])
    assert fault_code(lambda: adapter.handle(too_much, deadline())) == (ErrorCode.PROVIDER_FAULT, "242")
    too_little = _receipt(95, "1000000002", "10.00", [("36", "10.00", None)])
    assert fault_code(lambda: adapter.handle(too_little, deadline())) == (ErrorCode.PROVIDER_FAULT, "241")
    unknown_item = _receipt(96, "1000000001", "100.00", [("114", "100.00", None)])
    assert fault_code(lambda: adapter.handle(unknown_item, deadline())) == (ErrorCode.PROVIDER_FAULT, "202")
