"""The processing-centre emulator on the wire, as any Agent would see it: the spec's own request examples,
authorisation, the idempotency table of spec §6, lenient amounts, and the switches over HTTP."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3

from gateway.serving import BackgroundServer
from emulators.payments import PaymentsEmulator, make_emulator
from emulators.payments_seed import DEMO_TOKEN, PENDING_TOKEN, REVOKED_TOKEN
from gateway.adapters.payments.jsonwire import encode, loads

FIXTURES = Path(__file__).parent / "payments_fixtures"
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.fixture
def emulator() -> PaymentsEmulator:
    return make_emulator()


@pytest.fixture
def server(emulator: PaymentsEmulator) -> Iterator[BackgroundServer]:
    with BackgroundServer(emulator) as running:
        yield running


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=5))
    yield manager
    manager.clear()


class Agent:
    """A bare protocol client: POST raw bytes, read status and JSON."""

    def __init__(self, server: BackgroundServer, pool: urllib3.PoolManager) -> None:
        self.base = server.url
        self.pool = pool

    def call(self, method: str, body: bytes | dict[str, Any] | None = None, headers: dict[str, str] | None = None,
             verb: str = "POST") -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) or body is None else encode(body)
        sent = {"Content-Type": "application/json", "Accept": "application/json", **AUTH, **(headers or {})}
        response = self.pool.request(verb, f"{self.base}/api/v20/{method}", body=raw, headers=sent)
        return response.status, loads(response.data) if response.data.startswith(b"{") else response.data

    def ok(self, method: str, body: bytes | dict[str, Any] | None = None) -> dict[str, Any]:
        status, answer = self.call(method, body)
        assert status == 200, answer
        return answer


@pytest.fixture
def agent(server: BackgroundServer, pool: urllib3.PoolManager) -> Agent:
    return Agent(server, pool)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def edited(name: str, **changes: Any) -> dict[str, Any]:
    return {**loads(fixture(name)), **changes}


# ----- the spec's examples, sent verbatim -----


def test_spec_check_examples(agent: Agent) -> None:
    first = agent.ok("check", fixture("check_request_a"))
    assert (first["result"], first["agentTransactionId"]) == (0, 1233355)
    assert first["transactionId"] == 900000000000000001
    # Variant B repeats the same agentTransactionId: a repeated check replays the first (spec §6).
    assert agent.ok("check", fixture("check_request_b")) == first


def test_spec_check_with_extras_has_an_invalid_account(agent: Agent) -> None:
    # The spec's variant C sends account "0" to P1012, whose regexp is ^\d{10}$.
    assert agent.ok("check", fixture("check_request_c"))["result"] == 4


@pytest.mark.parametrize("name", ["pay_request_a", "pay_request_b", "pay_request_c"])
def test_spec_pay_examples_succeed(agent: Agent, emulator: PaymentsEmulator, name: str) -> None:
    answer = agent.ok("pay", fixture(name))
    assert answer["result"] == 0 and answer["resultMessage"] == "Успешно"
    assert STAMP.match(answer["transactionDate"]) and STAMP.match(answer["statusDate"])
    assert emulator.balance == Decimal("509255.9000")


def test_spec_complex_pay_example_names_items_not_on_the_receipt(agent: Agent) -> None:
    # The spec's example uses P1011 and items 114/37/45; against the Alseko receipt they are unknown: 202.
    answer = agent.ok("pay", encode(edited("pay_request_d", serviceId="P0005", account="1000000001")))
    assert answer["result"] == 202


def test_spec_service_and_operator_examples(agent: Agent) -> None:
    service = agent.ok("service", fixture("service_request"))
    assert [s["serviceId"] for s in service["services"]] == ["P1012"]
    assert agent.ok("operatorByPhone", fixture("operator_by_phone_request")) == {
        "result": 0, "resultMessage": "ok", "serviceId": "P1011"}


def test_balance_shape_and_debit(agent: Agent) -> None:
    before = agent.ok("balance")
    assert before == {"result": 0, "resultMessage": "Успешно", "agent": {
        "agentId": 4, "agentName": "Наименоване Агента", "balance": Decimal("509455.9000"),
        "overdraft": Decimal("0.0000"), "notification": Decimal("0.0000"), "currency": "KZT"}}
    agent.ok("pay", fixture("pay_request_a"))
    assert agent.ok("balance")["agent"]["balance"] == Decimal("509255.9000")


# ----- authorisation -----


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": ""}, "token required"),
        ({"Authorization": f"Bearer {PENDING_TOKEN}"}, "token awaiting confirmation"),
        ({"Authorization": f"Bearer {REVOKED_TOKEN}"}, "token revoked"),
        ({"Authorization": "Bearer guessed"}, "unknown token"),
    ],
)
def test_refused_tokens(agent: Agent, emulator: PaymentsEmulator, headers: dict[str, str], message: str) -> None:
    assert agent.call("pay", fixture("pay_request_a"), headers) == (401, {"result": 300, "resultMessage": message})
    assert emulator.transactions == {}


def test_ip_allow_list(pool: urllib3.PoolManager) -> None:
    outside = make_emulator(allowed_ips=["10.0.0.0/8"])
    with BackgroundServer(outside) as running:
        status, answer = Agent(running, pool).call("balance")
    assert (status, answer["result"]) == (403, 300)
    inside = make_emulator(allowed_ips=["127.0.0.1"], allow_ip_without_token=True)
    with BackgroundServer(inside) as running:
        assert Agent(running, pool).call("balance", headers={"Authorization": ""})[0] == 200


def test_only_post_and_known_methods(agent: Agent) -> None:
    assert agent.call("balance", verb="GET")[0] == 405
    assert agent.call("refund", {})[0] == 404


# ----- idempotency (spec §6) -----


def test_identical_final_repeat_replays(agent: Agent, emulator: PaymentsEmulator) -> None:
    first = agent.ok("pay", fixture("pay_request_a"))
    # The same payment with amounts written differently is the same body.
    again = agent.ok("pay", encode(edited("pay_request_a", amountTo="200", amountFrom=200)))
    assert again == first
    assert len(emulator.payments()) == 1


def test_changed_body_on_a_final_payment(agent: Agent, emulator: PaymentsEmulator) -> None:
    first = agent.ok("pay", fixture("pay_request_a"))
    changed = encode(edited("pay_request_a", amountTo=Decimal("300.00"), amountFrom=Decimal("300.00")))
    assert agent.ok("pay", changed)["result"] == 215
    emulator.set_switches(changed_body_on_final="replay")
    assert agent.ok("pay", changed) == first
    assert len(emulator.payments()) == 1


def test_changed_body_on_a_pending_payment_is_202_and_the_payment_goes_on(agent: Agent, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=2, non_final_code=153)
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 153
    changed = encode(edited("pay_request_a", account="7770017712"))
    assert agent.ok("pay", changed)["result"] == 202
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 153
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 0
    assert [t.request["account"] for t in emulator.payments()] == ["7770017711"]


def test_pay_after_check_reuses_its_transaction_id(agent: Agent) -> None:
    check = agent.ok("check", fixture("check_request_a"))
    assert agent.ok("pay", fixture("pay_request_a"))["transactionId"] == check["transactionId"]


def test_202_on_a_first_request_leaves_the_number_free(agent: Agent) -> None:
    broken = encode(edited("pay_request_a", agentTransactionDate="17.02.2015"))
    assert agent.ok("pay", broken)["result"] == 202
    assert agent.ok("pay", broken)["result"] == 202
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", None),
        (b"[]", None),
        (encode({"serviceId": "P1011", "account": "7770017711"}), None),
        (fixture("pay_request_a"), {"Content-Type": "text/plain"}),
        (encode(edited("pay_request_a", agentTransactionId="1233355")), None),
        (encode(edited("pay_request_a", agentTransactionId=10**18)), None),
        (encode(edited("pay_request_a", amountTo=True)), None),
    ],
)
def test_malformed_requests_are_202(agent: Agent, body: bytes, headers: dict[str, str] | None) -> None:
    status, answer = agent.call("pay", body, headers)
    assert (status, answer["result"]) == (200, 202)


def test_lenient_amounts(agent: Agent, emulator: PaymentsEmulator) -> None:
    body = edited("pay_request_a", amountTo="150.5")
    del body["amountFrom"]
    assert agent.ok("pay", encode(body))["result"] == 0
    assert emulator.payments()[0].amount == Decimal("150.5")


def test_every_other_code_is_reachable(agent: Agent, emulator: PaymentsEmulator) -> None:
    emulator.balance = Decimal("150")
    results = {
        agent.ok("pay", encode(edited("pay_request_a", agentTransactionId=n, **changes)))["result"]
        for n, changes in enumerate([
            {"account": "12"}, {"account": "7770000005"}, {"account": "7770000007"}, {"account": "7770000008"},
            {"serviceId": "P7777"}, {"serviceId": "P0155", "account": "123456"}, {"amountTo": 1},
            {"amountTo": Decimal("100000.01")}, {"account": "7770000300"}, {"account": "7770000001"},
            {"account": "7770000153"}, {"amountFrom": 900}, {},
        ], start=1)
    }
    assert results == {4, 5, 7, 8, 130, 155, 241, 242, 300, 1, 153, 255, 220}


def test_insufficient_funds_topped_up_over_http(agent: Agent, emulator: PaymentsEmulator, pool: urllib3.PoolManager) -> None:
    emulator.balance = Decimal("100")
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 220
    topped = pool.request("POST", f"{agent.base}/_emulator/top-up", body=b'{"amount": "100.00"}')
    assert json.loads(topped.data) == {"balance": 200.0}
    assert agent.ok("pay", fixture("pay_request_a"))["result"] == 0
    assert emulator.balance == Decimal("0.0000")


# ----- switches over HTTP -----


def test_switches_over_http(agent: Agent, emulator: PaymentsEmulator, pool: urllib3.PoolManager) -> None:
    url = f"{agent.base}/_emulator/switches"
    assert json.loads(pool.request("GET", url).data)["non_final_polls"] == 0
    changed = pool.request("POST", url, body=b'{"non_final_polls": 2, "services_key": "servi\\u0441es"}')
    assert changed.status == 200 and json.loads(changed.data)["non_final_polls"] == 2
    assert emulator.switches.non_final_polls == 2
    assert "servi\u0441es" in agent.ok("services")
    assert pool.request("POST", url, body=b'{"non_final_code": 7}').status == 400
    assert pool.request("POST", url, body=b'{"no_such_switch": 1}').status == 400
    assert emulator.switches.non_final_code == 1
    pool.request("POST", url, body=b'{"down": true}')
    assert agent.call("balance")[0] == 503
    state = json.loads(pool.request("GET", f"{agent.base}/_emulator/state").data)
    assert state["balance"] == 509455.9


def test_dropped_connection(agent: Agent, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(down=True, down_mode="drop")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        agent.call("balance")
