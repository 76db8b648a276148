"""The payments adapter end to end: SOAP in, adapter, processing-centre emulator over HTTP, SOAP out.

Every operation of protocol v20 through the synchronous service ``Payments`` (each answer checked against the hub
schema and the adapter's payload schema, with the emulator's seed data), the error mapping (a backend refusal is
SCE011 with the backend's code in ``subError``), the amounts as the emulator receives them, the idempotency of
``agentTransactionId``, and on ``PaymentsAsync`` the finality rules: non-final answers polled until final and
delivered once, final refusals delivered as an ``AdapterFault`` RESPONSE, a backend that is down for a while.

The emulator lives for the whole session, so every payment here has a number of its own (a fresh ``paymentKey``
or a random ``agentTransactionId``); state other than switches that a test changes is put back by ``payments``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from emulators import payments_seed as seed
from gateway.adapters.payload import PayloadSchema
from gateway.adapters.payments import codes
from tests.test_adapters_e2e import PEP, adapter_answer, message_properties, only_response
from tests.test_async_channel import accepted, status_of
from tests.test_sync_faults import assert_fault
from tests.wire import Answer, async_send, post, sync_request, wait_for

P = "urn:gateway:adapters:payments"
FAULT = "urn:gateway:adapters"
FIXTURES = Path(__file__).parent / "adapters" / "payments_fixtures"
DATE = "2026-11-22T12:00:00"


# ----- fixtures -----


@pytest.fixture()
def payments(backend_servers: dict[str, tuple[Any, str]]) -> Iterator[Any]:
    """The session's processing-centre emulator; its switches, balance, tokens, address filter and catalogue are
    put back as they were after the test."""
    emulator = backend_servers["payments"][0]
    saved = (copy.deepcopy(emulator.switches), emulator.balance, dict(emulator.tokens), emulator.allowed_ips,
             dict(emulator.services))
    yield emulator
    emulator.switches, emulator.balance, emulator.tokens, emulator.allowed_ips, emulator.services = saved


# ----- building requests -----


def new_key() -> str:
    return f"e2e-pay-{uuid.uuid4()}"


def new_atid() -> int:
    return random.randint(10**15, 10**17)


def el(local: str, value: object | None) -> str:
    return "" if value is None else f"<{local}>{value}</{local}>"


def identity(service: str, account: str, key: str | None, atid: int | None) -> str:
    number = el("agentTransactionId", atid) if atid is not None else el("paymentKey", key or new_key())
    return f"{el('serviceId', service)}{el('account', account)}{number}{el('agentTransactionDate', DATE)}"


def extras_xml(extras: dict[str, str] | None) -> str:
    return "".join(f'<extra name="{name}">{value}</extra>' for name, value in (extras or {}).items())


def check_xml(service: str, account: str, key: str | None = None, atid: int | None = None, amount_to: str | None = None,
              amount_from: str | None = None, extras: dict[str, str] | None = None, payer: str = "") -> str:
    return (f'<CheckRequest xmlns="{P}">{identity(service, account, key, atid)}{el("amountTo", amount_to)}'
            f"{el('amountFrom', amount_from)}{extras_xml(extras)}{payer}</CheckRequest>")


def pay_xml(service: str, account: str, amount_to: str, key: str | None = None, atid: int | None = None,
            amount_from: str | None = None, contract_id: str | None = None, extras: dict[str, str] | None = None,
            items: tuple[tuple[str, str, str | None], ...] = (), payer: str = "") -> str:
    receipt = "".join(
        f"<extraService>{el('subServiceId', sub)}{el('amount', amount)}{el('lastCount', last)}</extraService>"
        for sub, amount, last in items
    )
    return (f'<PayRequest xmlns="{P}">{identity(service, account, key, atid)}{el("amountTo", amount_to)}'
            f"{el('amountFrom', amount_from)}{el('contractId', contract_id)}{extras_xml(extras)}{receipt}{payer}</PayRequest>")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text("utf-8"), parse_float=Decimal)


def from_spec_example(example: dict[str, Any], element: str, atid: int) -> str:
    """The spec's JSON example of a check or pay request written as the adapter's XML (with our own number)."""
    parts = [el("serviceId", example["serviceId"]), el("account", example["account"]), el("agentTransactionId", atid),
             el("agentTransactionDate", example["agentTransactionDate"]), el("amountTo", example.get("amountTo")),
             el("amountFrom", example.get("amountFrom"))]
    extras = dict(example.get("extras", {}))
    if "contractId" in extras and element == "PayRequest":
        parts.append(el("contractId", extras.pop("contractId")))
    parts.append(extras_xml(extras))
    for item in example.get("extraServices", ()):
        parts.append(f"<extraService>{el('subServiceId', item['subServiceId'])}{el('amount', item['amount'])}"
                     f"{el('lastCount', item.get('lastCount'))}</extraService>")
    parts += [el("identityCard", example.get("identityCard")), el("fullName", example.get("fullName"))]
    return f'<{element} xmlns="{P}">{"".join(parts)}</{element}>'


# ----- reading answers -----


def call(sync_url: str, payload: str) -> Answer:
    return post(sync_url, sync_request(service_id="Payments", data=f"<data>{payload}</data>"))


def ok(answer: Answer) -> etree._Element:
    """The adapter's final answer, valid against both schemas, status OK."""
    element = adapter_answer(answer, "payments")
    assert answer.payload.findtext("response/responseInfo/status/code") == "OK", answer.body[:800]
    return element


def pending(answer: Answer) -> etree._Element:
    element = adapter_answer(answer, "payments")
    assert answer.payload.findtext("response/responseInfo/status/code") == "PENDING", answer.body[:800]
    assert t(element, "final") == "false"
    return element


def t(element: etree._Element, path: str) -> str | None:
    return element.findtext("/".join(f"{{{P}}}{part}" for part in path.split("/")))


def all_of(element: etree._Element, local: str) -> list[etree._Element]:
    return element.findall("/".join(f"{{{P}}}{part}" for part in local.split("/")))


def sub_error(answer: Answer, code: str) -> etree._Element:
    """The SCE011 fault's subError, which must carry the backend's ``code``."""
    assert_fault(answer, "SCE011", "Server")
    sub = answer.fault_info().find("subError")
    assert sub is not None, answer.body[:800]
    assert sub.findtext("errorCode") == code, answer.body[:800]
    return sub


def sent(emulator: Any, method: str, atid: int) -> list[Any]:
    return [r for r in emulator.requests_to(method) if json.loads(r.body).get("agentTransactionId") == atid]


def paid(emulator: Any, atid: int) -> int:
    return sum(1 for p in emulator.payments() if p.agent_transaction_id == atid)


def derived(key: str) -> int:
    """docs/adapters/payments.md: the first 16 bytes of SHA-256(domain + key), big-endian, mod (10^18−1), + 1."""
    digest = hashlib.sha256(b"gateway:payments:v20:agentTransactionId:" + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:16], "big") % (10**18 - 1) + 1


# ===== the synchronous service: every operation =====


@pytest.mark.parametrize("services_key", ["services", "servi\u0441es"], ids=["latin", "cyrillic-spec-spelling"])
def test_services_lists_the_seed_catalogue(sync_url: str, payments: Any, services_key: str) -> None:
    payments.set_switches(services_key=services_key)
    answer = ok(call(sync_url, f'<ServicesRequest xmlns="{P}"/>'))
    assert answer.tag == f"{{{P}}}ServicesResponse"
    services = {t(s, "serviceId"): s for s in all_of(answer, "service")}
    assert list(services) == ["P1011", "P1012", "P0005", "P0006", "P2001", "P0155"]
    assert {sid: t(s, "scheme") for sid, s in services.items()} == {
        "P1011": "simple", "P1012": "simple", "P0005": "complex", "P0006": "withChoice", "P2001": "simple", "P0155": "simple"
    }
    beeline = services["P1011"]
    assert (t(beeline, "name"), t(beeline, "type"), t(beeline, "group"), t(beeline, "fixedPayment"), t(beeline, "country")) == (
        "Билайн Казахстан", "0", "Сотовая связь", "true", "КАЗАХСТАН"
    )
    assert [(t(i, "name"), t(i, "required"), t(i, "title"), t(i, "regexp")) for i in all_of(beeline, "input")] == [
        ("account", "true", "Номер телефона", r"^\d{10}$")
    ]
    herbalife = services["P1012"]
    assert [t(i, "name") for i in all_of(herbalife, "input")] == ["account", "ev_account1"]
    assert [t(d, "name") for d in all_of(herbalife, "display")] == ["fio", "info", "fixedAmount"]
    assert t(services["P0006"], "name") == "XXX банк" and t(services["P0005"], "type") == "1"


def test_service_describes_the_one_asked_for(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, f'<ServiceRequest xmlns="{P}"><serviceId>P0006</serviceId></ServiceRequest>'))
    assert answer.tag == f"{{{P}}}ServiceResponse"
    (service,) = all_of(answer, "service")
    assert (t(service, "serviceId"), t(service, "type"), t(service, "scheme"), t(service, "name"), t(service, "group")) == (
        "P0006", "2", "withChoice", "XXX банк", "Другие услуги"
    )
    assert [(t(i, "title"), t(i, "regexp")) for i in all_of(service, "input")] == [("Введите ИИН", r"^\d{12}$")]
    assert json.loads(payments.requests_to("service")[-1].body) == {"serviceId": "P0006"}


def test_balance_reports_the_agent_with_the_backends_decimals(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, f'<BalanceRequest xmlns="{P}"/>'))
    assert answer.tag == f"{{{P}}}BalanceResponse"
    assert (t(answer, "agentId"), t(answer, "agentName"), t(answer, "currency")) == (str(seed.AGENT_ID), seed.AGENT_NAME, "KZT")
    # Four places, as the backend wrote them (never through a float).
    assert t(answer, "balance") == format(payments.balance.quantize(Decimal("0.0001")), "f")
    assert (t(answer, "overdraft"), t(answer, "notification")) == ("0.0000", "0.0000")
    request = payments.requests_to("balance")[-1]
    assert request.headers["Authorization"] == f"Bearer {seed.DEMO_TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("example", ["check_request_a.json", "check_request_b.json"])
def test_check_simple_scheme_from_the_spec_example(sync_url: str, payments: Any, example: str) -> None:
    spec = fixture(example)
    atid = new_atid()
    answer = ok(call(sync_url, from_spec_example(spec, "CheckRequest", atid)))
    assert answer.tag == f"{{{P}}}CheckResponse"
    assert (t(answer, "agentTransactionId"), t(answer, "result"), t(answer, "final"), t(answer, "scheme")) == (
        str(atid), "0", "true", "simple"
    )
    assert int(t(answer, "transactionId")) >= seed.FIRST_TRANSACTION_ID
    (request,) = sent(payments, "check", atid)
    # The body is the spec's own example (with our number), the amounts written with exactly two places.
    assert json.loads(request.body, parse_float=Decimal) == {**spec, "agentTransactionId": atid}
    assert b'"amountTo":200.00,"amountFrom":200.00' in request.body


def test_check_simple_scheme_with_displays(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, check_xml("P1012", "1234567890", extras={"account1": "0000000042"})))
    assert t(answer, "scheme") == "simple" and t(answer, "result") == "0"
    displays = {d.get("name"): d.text for d in all_of(answer, "display")}
    assert displays == {"fio": "Test fio", "info": "Сумма к оплате 20000.00 тенге", "fixedAmount": "20000.00"}


def test_check_with_choice_scheme_lists_the_contracts(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, check_xml("P0006", "931002451325")))
    assert (t(answer, "scheme"), t(answer, "final")) == ("withChoice", "true")
    contracts = [(t(c, "contractId"), t(c, "name"), t(c, "contractNumber"), t(c, "contractSum"), t(c, "contractDate"))
                 for c in all_of(answer, "contract")]
    # The spec's example contracts (check_contracts_response.json), dates turned into xs:dateTime.
    spec = fixture("check_contracts_response.json")["contracts"]
    assert contracts == [
        (c["contractId"], c["name"], c["contractNumber"], c["contractSum"],
         f"{c['contractDate'][:4]}-{c['contractDate'][4:6]}-{c['contractDate'][6:8]}T00:00:00")
        for c in spec
    ]


def test_check_complex_scheme_shows_the_invoice(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, check_xml("P0005", "1000000001")))
    assert t(answer, "scheme") == "complex"
    (invoice,) = all_of(answer, "invoice")
    assert (t(invoice, "invoiceId"), t(invoice, "formedDate"), t(invoice, "expireDate"), t(invoice, "clientName")) == (
        "2020020003535444", "2020-02-01T00:00:00", "2020-02-29T00:00:00", "Иванов Иван Иванович"
    )
    spec = fixture("check_invoice_response.json")["invoice"]["invoices"][0]["services"]
    items = [(t(s, "subServiceId"), t(s, "subServiceName"), Decimal(t(s, "paySum")), Decimal(t(s, "tariff")),
              t(s, "isMeter"), t(s, "prevCount"), t(s, "si")) for s in all_of(invoice, "service")]
    assert items == [
        (s["subServiceId"], s["subServiceName"], s["data"]["paySum"], s["data"]["tariff"],
         "true" if s["data"]["isMeter"] else "false", s["data"]["prevCount"], s["data"]["si"])
        for s in spec
    ]


def test_check_of_an_international_provider_shows_the_conversion(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, check_xml("P2001", "12025550123", amount_to="840")))
    spec = fixture("check_conversion_response.json")
    conversion = answer.find(f"{{{P}}}conversion")
    assert conversion is not None
    assert (t(conversion, "currencyRate"), Decimal(t(conversion, "rate")), Decimal(t(conversion, "finalAmount")),
            t(conversion, "currency")) == (spec["currencyRate"], spec["rate"], spec["finalAmount"], "USD")


def test_pay_simple_scheme_from_the_spec_example(sync_url: str, payments: Any) -> None:
    spec = fixture("pay_request_a.json")
    atid = new_atid()
    before = payments.balance
    answer = ok(call(sync_url, from_spec_example(spec, "PayRequest", atid)))
    assert answer.tag == f"{{{P}}}PayResponse"
    assert (t(answer, "agentTransactionId"), t(answer, "result"), t(answer, "resultMessage"), t(answer, "final")) == (
        str(atid), "0", "Успешно", "true"
    )
    transaction_id = t(answer, "transactionId")
    assert len(transaction_id) == 18 and int(transaction_id) >= seed.FIRST_TRANSACTION_ID
    assert t(answer, "transactionDate") and t(answer, "statusDate")
    (request,) = sent(payments, "pay", atid)
    assert json.loads(request.body, parse_float=Decimal) == {**spec, "agentTransactionId": atid}
    assert paid(payments, atid) == 1 and payments.balance == before - Decimal("200.00")


def test_pay_with_choice_scheme_pays_the_chosen_contract(sync_url: str, payments: Any) -> None:
    atid = new_atid()
    check = ok(call(sync_url, check_xml("P0006", "931002451325", atid=atid)))
    contract = fixture("pay_request_c.json")["extras"]["contractId"]  # the spec's choice: 000000588
    assert contract in [t(c, "contractId") for c in all_of(check, "contract")]
    answer = ok(call(sync_url, pay_xml("P0006", "931002451325", "2000", atid=atid, contract_id=contract)))
    assert (t(answer, "result"), t(answer, "final")) == ("0", "true")
    # One payment, one number: the pay goes on under the check's transactionId (spec open question 4).
    assert t(answer, "transactionId") == t(check, "transactionId")
    (request,) = sent(payments, "pay", atid)
    assert json.loads(request.body)["extras"] == {"contractId": contract}
    assert paid(payments, atid) == 1


def test_pay_complex_scheme_pays_the_receipt_items(sync_url: str, payments: Any) -> None:
    atid = new_atid()
    check = ok(call(sync_url, check_xml("P0005", "1000000001", atid=atid)))
    items = tuple((t(s, "subServiceId"), t(s, "paySum"), None) for s in all_of(check, "invoice/service"))
    assert [i[:2] for i in items] == [("36", "359.8"), ("13", "80.0"), ("2", "925.2")]
    items = (("36", "359.8", "4901.5"),) + items[1:]
    answer = ok(call(sync_url, pay_xml("P0005", "1000000001", "1365", atid=atid, items=items)))
    assert (t(answer, "result"), t(answer, "final"), t(answer, "transactionId")) == ("0", "true", t(check, "transactionId"))
    (request,) = sent(payments, "pay", atid)
    assert b'"amountTo":1365.00' in request.body
    assert json.loads(request.body, parse_float=Decimal)["extraServices"] == [
        {"subServiceId": "36", "lastCount": "4901.5", "amount": Decimal("359.80")},
        {"subServiceId": "13", "amount": Decimal("80.00")},
        {"subServiceId": "2", "amount": Decimal("925.20")},
    ]
    assert re.findall(rb'"amount":([0-9.]+)', request.body) == [b"359.80", b"80.00", b"925.20"]
    assert paid(payments, atid) == 1


@pytest.mark.parametrize("phone", [fixture("operator_by_phone_request.json")["phoneNumber"], "7012345678", "7051234567"],
                         ids=["spec-example", "ported", "prefix-705"])
def test_operator_by_phone_found(sync_url: str, payments: Any, phone: str) -> None:
    answer = ok(call(sync_url, f'<OperatorByPhoneRequest xmlns="{P}"><phoneNumber>{phone}</phoneNumber></OperatorByPhoneRequest>'))
    assert answer.tag == f"{{{P}}}OperatorByPhoneResponse"
    assert (t(answer, "phoneNumber"), t(answer, "result"), t(answer, "serviceId")) == (phone, "0", "P1011")
    assert json.loads(payments.requests_to("operatorByPhone")[-1].body) == {"phoneNumber": phone}


def test_operator_by_phone_not_determined_is_an_answer(sync_url: str, payments: Any) -> None:
    answer = ok(call(sync_url, f'<OperatorByPhoneRequest xmlns="{P}"><phoneNumber>7011111111</phoneNumber></OperatorByPhoneRequest>'))
    assert (t(answer, "phoneNumber"), t(answer, "result"), t(answer, "resultMessage")) == ("7011111111", "5", "operator not determined")
    assert answer.find(f"{{{P}}}serviceId") is None


# ===== amounts on the wire =====


@pytest.mark.parametrize(
    ("amount_to", "amount_from", "wire_to", "wire_from"),
    [("200", "200.0", "200.00", "200.00"), ("150.5", "151", "150.50", "151.00"), ("1234.56", "1300.10", "1234.56", "1300.10"),
     ("0100.70", None, "100.70", None)],
)
def test_amounts_reach_the_backend_with_exactly_two_places(
    sync_url: str, payments: Any, amount_to: str, amount_from: str | None, wire_to: str, wire_from: str | None
) -> None:
    atid = new_atid()
    ok(call(sync_url, check_xml("P1011", "7770017711", atid=atid, amount_to=amount_to, amount_from=amount_from)))
    ok(call(sync_url, pay_xml("P1011", "7770017711", amount_to, atid=atid, amount_from=amount_from)))
    expected = {"amountTo": wire_to} | ({"amountFrom": wire_from} if wire_from else {})
    for method in ("check", "pay"):
        (request,) = sent(payments, method, atid)
        assert dict((k.decode(), v.decode()) for k, v in re.findall(rb'"(amountTo|amountFrom)":([^,}]+)', request.body)) == expected


def test_amounts_the_protocol_cannot_carry_are_refused_before_the_backend(sync_url: str, payments: Any) -> None:
    before = len(payments.requests_to("pay"))
    for amount in ("200.001", "-5", "0", "1e3"):
        assert_fault(call(sync_url, pay_xml("P1011", "7770017711", amount)), "SCE001", "Client")
    # Receipt items that do not add up to amountTo, an extra named twice: the schema cannot say, the adapter does.
    items = (("36", "359.80", None), ("13", "80.00", None))
    assert_fault(call(sync_url, pay_xml("P0005", "1000000001", "500", items=items)), "SCE001", "Client")
    twice = pay_xml("P1012", "1234567890", "20000", extras={"account1": "1"}).replace(
        '<extra name="account1">1</extra>', '<extra name="account1">1</extra><extra name="account1">2</extra>')
    assert_fault(call(sync_url, twice), "SCE001", "Client")
    assert len(payments.requests_to("pay")) == before


# ===== the error mapping on the synchronous channel =====

REFUSALS: list[tuple[str, int, Callable[[], str]]] = [
    ("4-spec-check-c", codes.BAD_ACCOUNT_FORMAT, lambda: from_spec_example(fixture("check_request_c.json"), "CheckRequest", new_atid())),
    ("4-operatorByPhone", codes.BAD_ACCOUNT_FORMAT,
     lambda: f'<OperatorByPhoneRequest xmlns="{P}"><phoneNumber>12345</phoneNumber></OperatorByPhoneRequest>'),
    ("5-check", codes.ACCOUNT_NOT_FOUND, lambda: check_xml("P1011", "7770000005")),
    ("5-pay-unknown-account", codes.ACCOUNT_NOT_FOUND, lambda: pay_xml("P0006", "111111111111", "100", contract_id="1")),
    ("7-pay", codes.PROHIBITED_BY_PROVIDER, lambda: pay_xml("P1011", "7770000007", "200")),
    ("8-check", codes.PROHIBITED_TECHNICAL, lambda: check_xml("P1011", "7770000008", amount_to="200")),
    ("130-check", codes.SERVICE_NOT_IMPLEMENTED, lambda: check_xml("P9999", "7770017711")),
    ("130-service", codes.SERVICE_NOT_IMPLEMENTED, lambda: f'<ServiceRequest xmlns="{P}"><serviceId>P9999</serviceId></ServiceRequest>'),
    ("155-pay", codes.SERVICE_PROHIBITED, lambda: pay_xml("P0155", "123456", "200")),
    ("202-spec-pay-d", codes.REQUEST_DATA_ERROR,
     lambda: from_spec_example({**fixture("pay_request_d.json"), "serviceId": "P0005", "account": "1000000001"}, "PayRequest", new_atid())),
    ("202-missing-extra", codes.REQUEST_DATA_ERROR, lambda: check_xml("P1012", "1234567890")),
    ("202-not-the-fixed-amount", codes.REQUEST_DATA_ERROR, lambda: pay_xml("P1012", "1234567890", "200", extras={"account1": "1"})),
    ("241-pay", codes.AMOUNT_TOO_SMALL, lambda: pay_xml("P1011", "7770017711", "99.99")),
    ("241-receipt-item", codes.AMOUNT_TOO_SMALL, lambda: pay_xml("P0005", "1000000002", "349", items=(("36", "49", None), ("2", "300", None)))),
    ("242-check", codes.AMOUNT_TOO_LARGE, lambda: check_xml("P1011", "7770017711", amount_to="100000.01")),
    ("242-receipt-item", codes.AMOUNT_TOO_LARGE, lambda: pay_xml("P0005", "1000000002", "801", items=(("36", "501", None), ("2", "300", None)))),
    ("300-pay", codes.OTHER_ERROR, lambda: pay_xml("P1011", "7770000300", "200")),
]


@pytest.mark.parametrize(("code", "payload"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_backend_refusal_is_sce011_with_the_backends_code(sync_url: str, payments: Any, code: int, payload: Callable[[], str]) -> None:
    sub = sub_error(call(sync_url, payload()), str(code))
    assert sub.findtext("errorMessage").startswith(codes.RESULT_CODES[code].meaning)
    assert sub.findtext("errorDate")


def test_a_changed_body_under_a_final_payment_is_215_and_pays_nothing(sync_url: str, payments: Any) -> None:
    key = new_key()
    first = ok(call(sync_url, pay_xml("P1011", "7770017711", "300", key=key)))
    balance = payments.balance
    sub = sub_error(call(sync_url, pay_xml("P1011", "7770017711", "301", key=key)), "215")
    assert "transaction with this number exists" in sub.findtext("errorMessage")
    assert paid(payments, int(t(first, "agentTransactionId"))) == 1 and payments.balance == balance


def test_a_pending_payment_resent_until_final_with_a_changed_body_refused_meanwhile(sync_url: str, payments: Any) -> None:
    """Account 7770000153: 153 (security review) twice, then 0; a changed body while pending is 202, and the
    payment goes on."""
    key = new_key()
    first = pending(call(sync_url, pay_xml("P1011", "7770000153", "250", key=key)))
    atid = int(t(first, "agentTransactionId"))
    assert atid == derived(key) and t(first, "result") == "153"
    sub_error(call(sync_url, pay_xml("P1011", "7770000153", "260", key=key)), "202")
    assert t(pending(call(sync_url, pay_xml("P1011", "7770000153", "250", key=key))), "result") == "153"
    final = ok(call(sync_url, pay_xml("P1011", "7770000153", "250", key=key)))
    assert (t(final, "result"), t(final, "transactionId")) == ("0", t(first, "transactionId"))
    assert paid(payments, atid) == 1


def test_insufficient_funds_ends_in_250_on_the_sync_channel(sync_url: str, payments: Any) -> None:
    payments.balance = Decimal("50.0000")
    key = new_key()
    for _ in range(3):  # 220 on the first sending and on insufficient_funds_polls − 1 = 2 repeats
        assert t(pending(call(sync_url, pay_xml("P1011", "7770017711", "200", key=key))), "result") == "220"
    sub_error(call(sync_url, pay_xml("P1011", "7770017711", "200", key=key)), "250")
    assert paid(payments, derived(key)) == 0 and payments.balance == Decimal("50.0000")


@pytest.mark.parametrize("refusal", ["revoked-token", "address-not-allowed"])
def test_an_authorisation_refusal_is_sce011_with_the_bodys_result(sync_url: str, payments: Any, refusal: str) -> None:
    if refusal == "revoked-token":
        payments.tokens[seed.DEMO_TOKEN] = "revoked"
        reason = "HTTP 401"
    else:
        payments.allowed_ips = ("10.0.0.0/8",)
        reason = "HTTP 403"
    sub = sub_error(call(sync_url, f'<BalanceRequest xmlns="{P}"/>'), str(codes.OTHER_ERROR))
    assert reason in sub.findtext("errorMessage")
    # A first pay refused outright was not processed: final too, nothing paid.
    key = new_key()
    sub_error(call(sync_url, pay_xml("P1011", "7770017711", "200", key=key)), str(codes.OTHER_ERROR))
    assert paid(payments, derived(key)) == 0


def test_a_dropped_connection_is_sce009(sync_url: str, payments: Any) -> None:
    payments.set_switches(down=True, down_mode="drop")
    assert_fault(call(sync_url, f'<ServicesRequest xmlns="{P}"/>'), "SCE009", "Server")
    assert_fault(call(sync_url, check_xml("P1011", "7770017711")), "SCE009", "Server")


def test_a_slow_backend_is_sce010(sync_url: str, payments: Any) -> None:
    payments.set_switches(delay_seconds=5.5)  # the test gateway's sync budget is 5 s
    started = time.monotonic()
    assert_fault(call(sync_url, f'<BalanceRequest xmlns="{P}"/>'), "SCE010", "Server")
    assert time.monotonic() - started < 5.4


def test_an_answer_the_protocol_does_not_allow_is_sce013(sync_url: str, payments: Any) -> None:
    broken = seed.ServiceRule(catalogue={"serviceId": "PBAD", "type": "zero", "name": "Broken"})
    payments.services = {**payments.services, "PBAD": broken}
    assert_fault(call(sync_url, f'<ServiceRequest xmlns="{P}"><serviceId>PBAD</serviceId></ServiceRequest>'), "SCE013", "Server")
    assert_fault(call(sync_url, f'<ServicesRequest xmlns="{P}"/>'), "SCE013", "Server")


def test_a_pay_the_backend_did_not_answer_is_pending_not_failed(sync_url: str, payments: Any) -> None:
    """A pay with no answer may have been made: PENDING, and the resend (same key) tells."""
    key = new_key()
    payments.set_switches(lose_answers=1)  # processed, answered HTTP 503
    lost = pending(call(sync_url, pay_xml("P1011", "7770017711", "210", key=key)))
    assert t(lost, "result") is None and "SCE009" in t(lost, "resultMessage")
    assert paid(payments, derived(key)) == 1
    payments.set_switches(down=True)
    assert "SCE009" in t(pending(call(sync_url, pay_xml("P1011", "7770017711", "210", key=key))), "resultMessage")
    payments.set_switches(down=False)
    final = ok(call(sync_url, pay_xml("P1011", "7770017711", "210", key=key)))
    assert t(final, "agentTransactionId") == str(derived(key)) and t(final, "result") == "0"
    assert paid(payments, derived(key)) == 1
    assert len({r.body for r in sent(payments, "pay", derived(key))}) == 1


# ===== agentTransactionId idempotency =====


def test_the_same_payment_key_sent_twice_pays_once(sync_url: str, payments: Any) -> None:
    key = new_key()
    before = payments.balance
    first = ok(call(sync_url, pay_xml("P1011", "7770017711", "444.4", key=key)))
    second = ok(call(sync_url, pay_xml("P1011", "7770017711", "444.40", key=key)))
    atid = derived(key)
    assert t(first, "agentTransactionId") == t(second, "agentTransactionId") == str(atid)
    assert t(first, "transactionId") == t(second, "transactionId")
    requests = sent(payments, "pay", atid)
    assert len(requests) == 2 and requests[0].body == requests[1].body
    assert paid(payments, atid) == 1 and payments.balance == before - Decimal("444.40")


def test_a_check_and_its_pay_share_the_number_of_the_payment_key(sync_url: str, payments: Any) -> None:
    key = new_key()
    check = ok(call(sync_url, check_xml("P1011", "7770017711", key=key, amount_to="120")))
    pay = ok(call(sync_url, pay_xml("P1011", "7770017711", "120", key=key)))
    assert t(check, "agentTransactionId") == t(pay, "agentTransactionId") == str(derived(key))
    assert t(check, "transactionId") == t(pay, "transactionId")
    other = ok(call(sync_url, pay_xml("P1011", "7770017711", "120", key=new_key())))
    assert t(other, "agentTransactionId") != t(pay, "agentTransactionId")


# ===== the asynchronous service PaymentsAsync =====


def send(async_url: str, payload: str) -> tuple[str, str]:
    return accepted(post(async_url, async_send("PaymentsAsync", data=f"<data>{payload}</data>")))


def answer_of(message: etree._Element) -> etree._Element:
    element = message.find("messageData/data")[0]
    PayloadSchema.of("payments").check_answer(element)
    assert message_properties(message)["adapterStatusCode"] == "OK"
    return element


def adapter_fault(message: etree._Element, backend_code: str) -> etree._Element:
    fault = message.find("messageData/data")[0]
    assert fault.tag == f"{{{FAULT}}}AdapterFault", etree.tostring(fault)[:500]
    PayloadSchema.of("common").check_answer(fault)
    assert fault.findtext(f"{{{FAULT}}}errorCode") == "SCE011"
    assert fault.findtext(f"{{{FAULT}}}backendCode") == backend_code
    assert fault.findtext(f"{{{FAULT}}}backendMessage").startswith(codes.RESULT_CODES[int(backend_code)].meaning)
    assert message_properties(message)["adapterStatusCode"] == "SCE011"
    return fault


NON_FINAL = [
    # (id, switches, account, amountTo, amountFrom, non-final code, final backend code (None: success), sendings)
    ("153-then-0", {}, "7770000153", "200", None, 153, None, 3),
    ("1-then-300", {}, "7770000001", "200", None, 1, "300", 3),
    ("255-commission-then-300", {}, "7770017711", "200", "700.01", 255, "300", 3),
    ("255-switch-then-0", {"non_final_polls": 3, "non_final_code": 255}, "7770017711", "200", None, 255, None, 4),
    ("153-switch-then-300", {"non_final_polls": 2, "non_final_code": 153, "non_final_outcome": 300}, "7770017711", "200", None, 153, "300", 3),
    ("220-then-250", {"insufficient_funds_polls": 3}, "7770017711", "200", None, 220, "250", 4),
]


@pytest.mark.parametrize(("switches", "account", "amount_to", "amount_from", "non_final", "outcome", "sendings"),
                         [r[1:] for r in NON_FINAL], ids=[r[0] for r in NON_FINAL])
def test_a_non_final_payment_is_polled_until_final_and_delivered_once(
    async_url: str, payments: Any, switches: dict[str, Any], account: str, amount_to: str, amount_from: str | None,
    non_final: int, outcome: str | None, sendings: int,
) -> None:
    payments.set_switches(**switches)
    if non_final == codes.INSUFFICIENT_FUNDS:
        payments.balance = Decimal("100.0000")
    key = new_key()
    atid = derived(key)
    request_id, correlation_id = send(async_url, pay_xml("P1011", account, amount_to, key=key, amount_from=amount_from))
    message = only_response(async_url, "PaymentsAsync", request_id, correlation_id)
    requests = sent(payments, "pay", atid)
    # The same body, resent until final and not once more; the first answer was the non-final code.
    assert len(requests) == sendings and len({r.body for r in requests}) == 1
    transaction = payments.transactions[("pay", atid)]
    assert transaction.final and transaction.funds_polls == (sendings - 1 if non_final == codes.INSUFFICIENT_FUNDS else 0)
    if outcome is None:
        answer = answer_of(message)
        assert (t(answer, "agentTransactionId"), t(answer, "result"), t(answer, "final")) == (str(atid), "0", "true")
        assert paid(payments, atid) == 1
    else:
        adapter_fault(message, outcome)
        assert paid(payments, atid) == 0


def test_insufficient_funds_topped_up_while_pending_is_paid_once(async_url: str, payments: Any) -> None:
    payments.set_switches(insufficient_funds_polls=1000)
    payments.balance = Decimal("10.0000")
    key = new_key()
    atid = derived(key)
    request_id, correlation_id = send(async_url, pay_xml("P1011", "7770017711", "500", key=key))
    wait_for(lambda: len(sent(payments, "pay", atid)) >= 3, seconds=10)
    assert status_of(async_url, request_id, *PEP) != "DELIVERED"
    assert payments.transactions[("pay", atid)].answer["result"] == codes.INSUFFICIENT_FUNDS
    payments.top_up(Decimal("1000.00"))
    answer = answer_of(only_response(async_url, "PaymentsAsync", request_id, correlation_id))
    assert (t(answer, "result"), t(answer, "final")) == ("0", "true")
    assert paid(payments, atid) == 1 and payments.balance == Decimal("510.0000")


@pytest.mark.parametrize(
    ("payload", "code"),
    [(lambda: pay_xml("P1011", "7770000005", "200"), "5"),
     (lambda: check_xml("P0155", "123456"), "155"),
     (lambda: pay_xml("P1011", "7770017711", "100000.01"), "242"),
     (lambda: pay_xml("P0006", "931002451325", "1000", contract_id="999"), "202")],
    ids=["pay-5", "check-155", "pay-242", "pay-202-first-sending"],
)
def test_a_final_refusal_is_delivered_as_an_adapter_fault_response(
    async_url: str, payments: Any, payload: Callable[[], str], code: str
) -> None:
    before = len(payments.received)
    request_id, correlation_id = send(async_url, payload())
    message = only_response(async_url, "PaymentsAsync", request_id, correlation_id)
    adapter_fault(message, code)
    assert len(payments.received) == before + 1, "a final refusal is not asked again"


def test_the_same_async_message_resent_pays_once(async_url: str, payments: Any) -> None:
    key = new_key()
    atid = derived(key)
    before = payments.balance
    payload = pay_xml("P1011", "7770017711", "321.5", key=key)
    first = answer_of(only_response(async_url, "PaymentsAsync", *send(async_url, payload)))
    second = answer_of(only_response(async_url, "PaymentsAsync", *send(async_url, payload)))
    for answer in (first, second):
        assert (t(answer, "agentTransactionId"), t(answer, "result"), t(answer, "final")) == (str(atid), "0", "true")
    assert t(first, "transactionId") == t(second, "transactionId")
    requests = sent(payments, "pay", atid)
    assert len(requests) == 2 and requests[0].body == requests[1].body and b'"amountTo":321.50' in requests[0].body
    assert paid(payments, atid) == 1 and payments.balance == before - Decimal("321.50")


def test_a_lost_answer_is_resent_and_pays_once(async_url: str, payments: Any) -> None:
    payments.set_switches(lose_answers=2)  # the payment is made at once, its first two answers are lost
    key = new_key()
    atid = derived(key)
    answer = answer_of(only_response(async_url, "PaymentsAsync", *send(async_url, pay_xml("P1011", "7770017711", "205", key=key))))
    assert (t(answer, "agentTransactionId"), t(answer, "result")) == (str(atid), "0")
    assert len(sent(payments, "pay", atid)) == 3 and paid(payments, atid) == 1


@pytest.mark.parametrize("down_mode", ["503", "drop"])
def test_a_payment_while_the_backend_is_down_is_delivered_when_it_is_up(async_url: str, payments: Any, down_mode: str) -> None:
    payments.set_switches(down=True, down_mode=down_mode)
    key = new_key()
    atid = derived(key)
    before = len(payments.requests_to("pay"))
    request_id, correlation_id = send(async_url, pay_xml("P1011", "7770017711", "230", key=key))
    wait_for(lambda: len(payments.requests_to("pay")) >= before + 4, seconds=10)
    assert status_of(async_url, request_id, *PEP) != "DELIVERED" and paid(payments, atid) == 0
    payments.set_switches(down=False)
    answer = answer_of(only_response(async_url, "PaymentsAsync", request_id, correlation_id))
    assert (t(answer, "agentTransactionId"), t(answer, "result"), t(answer, "final")) == (str(atid), "0", "true")
    assert paid(payments, atid) == 1


def test_a_balance_asked_while_the_backend_is_down_is_retried_and_delivered(async_url: str, payments: Any) -> None:
    payments.set_switches(down=True)
    before = len(payments.requests_to("balance"))
    request_id, correlation_id = send(async_url, f'<BalanceRequest xmlns="{P}"/>')
    wait_for(lambda: len(payments.requests_to("balance")) >= before + 1, seconds=10)
    payments.set_switches(down=False)
    answer = answer_of(only_response(async_url, "PaymentsAsync", request_id, correlation_id))
    assert (t(answer, "agentId"), t(answer, "currency")) == (str(seed.AGENT_ID), "KZT")
    assert len(payments.requests_to("balance")) >= before + 2


def test_a_poll_refused_authorisation_stays_pending(async_url: str, payments: Any) -> None:
    """HTTP 401 to a repeat leaves the payment's fate unknown: keep polling, never fail it."""
    payments.set_switches(non_final_polls=2)
    key = new_key()
    atid = derived(key)
    request_id, correlation_id = send(async_url, pay_xml("P1011", "7770017711", "240", key=key))
    wait_for(lambda: sent(payments, "pay", atid), seconds=10)
    payments.tokens[seed.DEMO_TOKEN] = "revoked"
    count = len(sent(payments, "pay", atid))
    wait_for(lambda: len(sent(payments, "pay", atid)) >= count + 3, seconds=10)
    assert status_of(async_url, request_id, *PEP) != "DELIVERED"
    payments.tokens[seed.DEMO_TOKEN] = "confirmed"
    answer = answer_of(only_response(async_url, "PaymentsAsync", request_id, correlation_id))
    assert t(answer, "result") == "0" and paid(payments, atid) == 1
