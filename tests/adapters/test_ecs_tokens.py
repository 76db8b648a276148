"""The ecs adapter's tokens (cached, renewed before expiry, one renewal in flight, renewed once on 401), its
3-second budget, unreachable or failing backends, its options, and the spec's own JSON examples."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from emulators.ecs import EcsEmulator
from emulators.http import reply
from gateway.serving import BackgroundServer
from gateway.adapters.ecs import create
from gateway.adapters.ecs.options import SERVICE_A_SCOPES, TOKEN_PATH
from gateway.adapters.ecs.token import TokenEndpoint, TokenSource
from gateway.adapters.ecs.wire import ServicesPage, TokenAnswer, TransactionsPage, read_answer, read_error
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError

from tests.adapters.test_ecs_adapter import (  # noqa: F401  (fixtures are used by name)
    LoopedHttp,
    backend,
    blocking,
    check,
    deadline,
    emulator,
    fault,
    http,
    items,
    leaf,
    make_adapter,
    request,
    url,
    valid,
)

FIXTURES = Path(__file__).parent / "ecs_fixtures"
SERVICES = request("GetOrganizationServicesRequest")


def test_concurrent_callers_share_one_token_request(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    # A slow token server keeps the renewal in flight while every thread asks for a token.
    emulator.set_switches(delay_seconds=0.3)
    before = emulator.token_requests
    callers = 8
    start = threading.Barrier(callers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        start.wait(timeout=5)
        answer = adapter.handle(SERVICES, deadline())
        with lock:
            outcomes.append(leaf(answer.data, "totalItems") or "")

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes == ["12"] * callers
    assert emulator.token_requests - before == 1


def token_source(url: str, http: LoopedHttp, secret: str = "secret-1") -> TokenSource:
    """Service A's token source of acceptor-1, on its own (no adapter around it)."""
    return TokenSource(TokenEndpoint(url + TOKEN_PATH, "acceptor-1", SecretStr(secret), SERVICE_A_SCOPES, 30.0), http.client)


def test_a_failed_renewal_reaches_every_caller_that_waited_for_it(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    source = token_source(url, http, secret="not-the-secret-7f3")
    # A slow token server keeps the renewal in flight while the other callers join it.
    emulator.set_switches(delay_seconds=0.3)
    before = emulator.token_requests

    async def callers() -> list[str | BaseException]:
        return await asyncio.gather(*(source.get(deadline()) for _ in range(5)), return_exceptions=True)

    outcomes = http.loop.run(callers())
    assert len(outcomes) == 5
    for outcome in outcomes:
        assert isinstance(outcome, GatewayError) and outcome.error is ErrorCode.PROVIDER_FAULT
        assert outcome.sub_error is not None and outcome.sub_error.code == "invalid_client"
    assert emulator.token_requests - before == 1


def test_a_caller_stops_waiting_at_its_deadline_and_the_renewal_goes_on(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    source = token_source(url, http)
    emulator.set_switches(delay_seconds=0.5)
    before = emulator.token_requests

    async def callers() -> tuple[str, GatewayError, float]:
        patient = asyncio.create_task(source.get(deadline()))
        await asyncio.sleep(0)  # the patient caller starts the renewal; the hurried one joins it
        started = time.monotonic()
        with pytest.raises(GatewayError) as caught:
            await source.get(started + 0.1)
        waited = time.monotonic() - started
        return await patient, caught.value, waited

    token, error, waited = http.loop.run(callers())
    assert error.error is ErrorCode.PROVIDER_TIMEOUT and error.data == "no time left waiting for an access token"
    assert waited < 0.4
    # The hurried caller's timeout did not cancel the renewal: the patient one got its token, which is now cached.
    assert token and http.loop.run(source.get(deadline())) == token
    assert emulator.token_requests - before == 1


def test_a_cached_token_is_reused_and_renewed_before_it_expires(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    emulator.set_switches(token_ttl_seconds=1)
    adapter = make_adapter(url, http)
    before_tokens, before_calls = emulator.token_requests, len(emulator.calls)
    adapter.handle(SERVICES, deadline())
    adapter.handle(SERVICES, deadline())
    assert emulator.token_requests - before_tokens == 1
    # A 1 s token is renewed half-way, before the backend would refuse it: no call meets a 401.
    time.sleep(0.6)
    adapter.handle(SERVICES, deadline())
    assert emulator.token_requests - before_tokens == 2
    assert len(emulator.calls) - before_calls == 3


def test_a_revoked_token_is_renewed_once_and_the_call_retried(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    adapter.handle(SERVICES, deadline())
    emulator.revoke_tokens()
    before_tokens, before_calls = emulator.token_requests, len(emulator.calls_to("GetOrganizationServices"))
    answer = valid(adapter.handle(SERVICES, deadline()))
    assert leaf(answer, "totalItems") == "12"
    assert emulator.token_requests - before_tokens == 1
    assert len(emulator.calls_to("GetOrganizationServices")) - before_calls == 2


def test_a_backend_that_keeps_rejecting_tokens_is_asked_twice_only(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    emulator.set_switches(reject_tokens=True)
    before_tokens, before_calls = emulator.token_requests, len(emulator.calls)
    error = fault(adapter, SERVICES)
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == "HTTP401"
    assert (emulator.token_requests - before_tokens, len(emulator.calls) - before_calls) == (2, 2)


def test_wrong_client_secret(url: str, http: LoopedHttp) -> None:
    adapter = blocking({"baseUrl": url, "clientId": "acceptor-1", "clientSecret": "not-the-secret-7f3", "connectionType": "1"}, http)
    error = fault(adapter, SERVICES)
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == "invalid_client"
    assert "not-the-secret-7f3" not in str(error) + error.sub_error.message


def test_the_default_budget_is_three_seconds() -> None:
    http = AsyncHttpClient(connect_timeout=1, max_response_bytes=1000)
    adapter = create({"baseUrl": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b", "connectionType": "1"}, http)
    assert adapter._options.timeout_seconds == 3.0


def test_the_adapter_does_not_wait_past_its_timeout(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http, timeoutSeconds="0.3")
    adapter.handle(SERVICES, deadline())  # token cached: the slow part below is the call itself
    emulator.set_switches(delay_seconds=0.8)
    started = time.monotonic()
    error = fault(adapter, SERVICES)
    assert error.error is ErrorCode.PROVIDER_TIMEOUT
    assert time.monotonic() - started < 0.6


def test_the_adapter_does_not_wait_past_the_deadline(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    adapter = make_adapter(url, http)
    emulator.set_switches(delay_seconds=0.8)
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        adapter.handle(SERVICES, time.monotonic() + 0.2)
    assert caught.value.error is ErrorCode.PROVIDER_TIMEOUT
    assert time.monotonic() - started < 0.5


def test_a_backend_that_is_down(url: str, http: LoopedHttp, emulator: EcsEmulator) -> None:
    with_token = make_adapter(url, http)
    with_token.handle(SERVICES, deadline())
    emulator.set_switches(down=True)
    # Down at the token endpoint (no token yet) and at the web service (token cached) alike.
    assert fault(make_adapter(url, http), SERVICES).error is ErrorCode.PROVIDER_UNREACHABLE
    assert fault(with_token, SERVICES).error is ErrorCode.PROVIDER_UNREACHABLE


def test_a_backend_nobody_listens_at(http: LoopedHttp) -> None:
    adapter = blocking({"baseUrl": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b", "connectionType": "1"}, http)
    assert fault(adapter, SERVICES).error is ErrorCode.PROVIDER_UNREACHABLE


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"connectionType": "4"}, "connectionType"),
        ({"baseUrl": "ftp://bank"}, "baseUrl"),
        ({"timeoutSeconds": "0"}, "timeoutSeconds"),
        ({"scopes": "ECS.WebAPI"}, "OrganizationAPI"),
        ({"historyClientId": "history-1"}, "historyClientSecret"),
        ({"clientSecret": ""}, "clientSecret"),
        ({"unknownKey": "x"}, "unknownKey"),
    ],
)
def test_bad_options_are_named(options: dict[str, str], problem: str) -> None:
    http = AsyncHttpClient(connect_timeout=1, max_response_bytes=1000)
    base = {"baseUrl": "https://bank.example", "clientId": "acceptor-1", "clientSecret": "top-secret", "connectionType": "1"}
    with pytest.raises(ValueError) as caught:
        create({**base, **options}, http)
    assert problem in str(caught.value)
    assert "top-secret" not in str(caught.value)


# The spec's own JSON examples


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_spec_examples_read_as_the_spec_means_them() -> None:
    token = read_answer(TokenAnswer, fixture("token_response.json"), "token")
    assert (token.expires_in, token.token_type, token.scope) == (3600, "Bearer", "ECS.WebAPI OrganizationAPI")
    services = read_answer(ServicesPage, fixture("services_response_corrected.json"), "services")
    assert [(item.service.id, item.service.name) for item in services.pageItems] == [(1, "Название услуги 1"), (2, "Название услуги 2")]
    history = read_answer(TransactionsPage, fixture("transactions_response.json"), "history")
    # The example's area carries shortName where the table says name (§12 item 2).
    assert history.pageItems[0].area.name == "Название района"
    assert str(history.pageItems[0].discountedPrice) == "100.0"
    error = read_error(400, fixture("error_response.json"))
    assert error is not None and (error.sub_code(), error.message) == ("100", "Ошибка")


class SpecExampleBackend:
    """A backend that answers with the spec's verbatim examples, to show the adapter takes them as they are."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        self.bodies[path] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        answers = {
            "/connect/token": (200, "token_response.json"),
            "/api/CheckClientBenefits": (200, "check_response.json"),
            "/api/GetTransactions": (200, "transactions_response.json"),
            "/api/GetOrganizationServices": (400, "error_response.json"),
        }
        status, name = answers[path]
        return reply(start_response, status, fixture(name), "application/json")


@pytest.fixture
def spec_backend() -> Iterator[tuple[SpecExampleBackend, str]]:
    stub = SpecExampleBackend()
    with BackgroundServer(stub) as server:
        yield stub, server.url


def test_the_adapter_against_the_spec_examples(spec_backend: tuple[SpecExampleBackend, str], http: LoopedHttp) -> None:
    stub, base = spec_backend
    adapter = blocking({"baseUrl": base, "clientId": "111", "clientSecret": "aaaabbbbbcccccc", "connectionType": "1"}, http)
    example = json.loads(fixture("check_request.json"))
    answer = check(adapter, ("clientCode", example["clientCode"]), service=example["serviceId"], terminal=example["organizationTerminalId"])
    assert json.loads(stub.bodies["/api/CheckClientBenefits"]) == example
    assert stub.bodies["/connect/token"] == (
        b"client_id=111&client_secret=aaaabbbbbcccccc&grant_type=client_credentials&scope=ECS.WebAPI+OrganizationAPI"
    )
    assert (leaf(answer, "transactionId"), leaf(answer, "clientId")) == ("123", "1")
    assert items(answer, "benefit") == [{"id": "1", "name": "Название льготы"}]

    history = valid(adapter.handle(request("GetTransactionsRequest", ("clientCode", "AAABBBCCC"), ("dateFrom", "2021-04-01"), ("dateTo", "2021-05-01")), deadline()))
    assert items(history, "transaction")[0]["areaName"] == "Название района"
    assert items(history, "transaction")[0]["discountedPrice"] == "100.0"

    error = fault(adapter, SERVICES)
    assert error.sub_error is not None and (error.sub_error.code, error.sub_error.message) == ("100", "The backend refused the request as invalid: Ошибка")


def test_a_success_without_benefits_is_not_passed_on(http: LoopedHttp) -> None:
    def backend_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"] == "/connect/token":
            return reply(start_response, 200, fixture("token_response.json"), "application/json")
        return reply(start_response, 200, b'{"resultCode":1,"transactionId":1,"clientId":1,"benefits":[]}', "application/json")

    with BackgroundServer(backend_app) as server:
        adapter = blocking({"baseUrl": server.url, "clientId": "1", "clientSecret": "s", "connectionType": "1"}, http)
        error = fault(adapter, request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 2), ("clientCode", "A")))
    assert error.error is ErrorCode.PROVIDER_RESPONSE_INVALID
    assert "benefits" in (error.data or "")
