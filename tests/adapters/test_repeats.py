"""A create call repeated after a crash or a lost answer makes nothing twice at a backend (issue 11, item 12).

A delivery worker that dies mid-call leaves its task to another worker, which calls ``handle`` again with the same
stored payload and request key. Here the first call is abandoned the way a dead worker abandons it (its answer
never read: the backend holds the call past the adapter's timeout and carries on after), then ``handle`` is called
again with the same payload, against each backend emulator over real HTTP on loopback.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
import urllib3
from lxml import etree

from emulators import ecert as ecert_emulator
from emulators import ecs as ecs_emulator
from emulators import payments as payments_emulator
from gateway.serving import BackgroundServer
from emulators.payments_seed import DEMO_TOKEN
from gateway.adapters import ecert as ecert_adapter
from gateway.adapters import ecs as ecs_adapter
from gateway.adapters import payments as payments_adapter
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread
from tests.adapters.test_ecert import ACTIVE, UUID4, block_request, edit_request, spec_create_request
from tests.wire import wait_for

ECERT_NS = "urn:gateway:adapters:ecert"
PAYMENTS_NS = "urn:gateway:adapters:payments"
ECS_NS = "urn:gateway:adapters:ecs"
ECERT_BASE = "/api/1.2.1-Y/ec"
HOLD_SECONDS = 0.8  # how long a backend holds the first call: beyond the adapters' 0.3 s timeout below
ADAPTER_TIMEOUT = "0.3"


@pytest.fixture
def http(loop_thread: LoopThread) -> Iterator[Client]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield Client(client, loop_thread)
    loop_thread.run(client.close())


@dataclass(frozen=True)
class Client:
    """The backends' client and the loop the adapters made with it run on."""

    client: AsyncHttpClient
    loop: LoopThread


class _Current:
    """One loopback server for the module, answering with each test's fresh emulator."""

    def __init__(self) -> None:
        self.emulator: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.emulator(environ, start_response)


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[_Current, str]]:
    current = _Current()
    with BackgroundServer(current) as server:
        yield current, server.url


def fresh(loopback: tuple[_Current, str], emulator: Any) -> tuple[Any, str]:
    loopback[0].emulator = emulator
    return emulator, loopback[1]


@pytest.fixture
def ecert_backend(loopback: tuple[_Current, str]) -> tuple[ecert_emulator.EcertEmulator, str]:
    return fresh(loopback, ecert_emulator.make_emulator())


@pytest.fixture
def payments_backend(loopback: tuple[_Current, str]) -> tuple[payments_emulator.PaymentsEmulator, str]:
    return fresh(loopback, payments_emulator.make_emulator())


@pytest.fixture
def ecs_backend(loopback: tuple[_Current, str]) -> tuple[ecs_emulator.EcsEmulator, str]:
    return fresh(loopback, ecs_emulator.make_emulator())


def deadline() -> float:
    return time.monotonic() + 5


def leaf(data: etree._Element, namespace: str, local: str) -> str | None:
    return data.findtext(f"{{{namespace}}}{local}")


def abandoned(call: Any) -> GatewayError:
    """Run ``call``, which must give up waiting for its answer (PROVIDER_TIMEOUT) while the backend goes on."""
    with pytest.raises(GatewayError) as caught:
        call()
    assert caught.value.error is ErrorCode.PROVIDER_TIMEOUT
    return caught.value


# ------------------------------------------------------------------------------------------------ ecert
def ecert(url: str, http: Client) -> BlockingAdapter:
    options = {"baseUrl": url + ECERT_BASE, "apiKey": ecert_emulator.DEFAULT_API_KEY,
               "jwsKey": ecert_emulator.DEFAULT_JWS_KEY.decode(), "timeoutSeconds": ADAPTER_TIMEOUT}
    return BlockingAdapter(ecert_adapter.create(options, http.client), http.loop)


TASK_REQUESTS = {
    "ec-create": spec_create_request,
    "ec-edit": lambda: edit_request(*ACTIVE, phoneNumber="9104560000"),
    "ec-block": lambda: block_request((*ACTIVE, "EСВR0003")),
}


@pytest.mark.parametrize("path", sorted(TASK_REQUESTS))
def test_ecert_task_request_repeated_with_the_same_key_names_the_task_already_made(
    ecert_backend: tuple[ecert_emulator.EcertEmulator, str], http: Client, path: str
) -> None:
    emulator, url = ecert_backend
    adapter = ecert(url, http)
    key = str(uuid.uuid4())
    first = adapter.handle(TASK_REQUESTS[path](), deadline(), request_key=key)
    again = adapter.handle(TASK_REQUESTS[path](), deadline(), request_key=key)
    sent = [r for r in emulator.received if r.path == f"{ECERT_BASE}/{path}"]
    assert len(sent) == 2
    # Same key, same x-request-id (in the protocol's UUID form), byte for byte the same body: one task.
    assert sent[0].headers["x-request-id"] == sent[1].headers["x-request-id"]
    assert UUID4.match(sent[0].headers["x-request-id"])
    assert sent[0].body == sent[1].body
    assert len(emulator.registry.tasks) == 1
    assert leaf(first.data, ECERT_NS, "taskId") == leaf(again.data, ECERT_NS, "taskId") in emulator.registry.tasks
    assert first.pending is not None and again.pending is not None
    assert first.pending.reference == again.pending.reference


def test_ecert_create_abandoned_mid_call_is_found_again_and_followed_to_its_result(
    ecert_backend: tuple[ecert_emulator.EcertEmulator, str], http: Client
) -> None:
    emulator, url = ecert_backend
    adapter = ecert(url, http)
    key = str(uuid.uuid4())
    emulator.set_switches(delay_seconds=HOLD_SECONDS, polls_until_done=1)
    abandoned(lambda: adapter.handle(spec_create_request(), deadline(), request_key=key))
    emulator.set_switches(delay_seconds=0)
    wait_for(lambda: emulator.registry.tasks, seconds=5)  # the backend made the task after all
    [made] = emulator.registry.tasks
    again = adapter.handle(spec_create_request(), deadline(), request_key=key)
    assert leaf(again.data, ECERT_NS, "taskId") == made and len(emulator.registry.tasks) == 1
    assert again.pending is not None
    final = adapter.poll(again.pending.reference, 1, deadline())
    assert final.pending is None and leaf(final.data, ECERT_NS, "taskStatus") == "taskIsExecuted"
    assert len(emulator.registry.certificates) == 5  # the four seed certificates and this one


def test_ecert_another_key_or_no_key_is_another_request(ecert_backend: tuple[ecert_emulator.EcertEmulator, str], http: Client) -> None:
    emulator, url = ecert_backend
    adapter = ecert(url, http)
    adapter.handle(spec_create_request(), deadline(), request_key="message-1")
    adapter.handle(spec_create_request(), deadline(), request_key="message-2")
    adapter.handle(spec_create_request(), deadline())
    adapter.handle(spec_create_request(), deadline())
    ids = {r.headers["x-request-id"] for r in emulator.received if r.path == f"{ECERT_BASE}/ec-create"}
    assert len(ids) == 4 and len(emulator.registry.tasks) == 4


def signed_block(emulator: ecert_emulator.EcertEmulator, url: str, request_id: str) -> urllib3.BaseHTTPResponse:
    body = rfc8785.dumps([{"recordId": 1, "factAssignmentUuid": ACTIVE[1], "certificateNumber": ACTIVE[0], "blockReason": "EСВR0001"}])
    headers = {"x-api-key": ecert_emulator.DEFAULT_API_KEY, "x-request-id": request_id, "x-request-date": "2024-04-05T10:43:07+03:00",
               "x-jws-signature": emulator.sign(body), "Content-Type": "application/json; charset=utf-8"}
    return urllib3.request("POST", url + ECERT_BASE + "/ec-block", body=body, headers=headers, retries=False, timeout=5)


def test_ecert_emulator_repeats_its_first_answer_even_while_the_first_request_is_held(
    ecert_backend: tuple[ecert_emulator.EcertEmulator, str]
) -> None:
    emulator, url = ecert_backend
    request_id = str(uuid.uuid4())
    emulator.set_switches(acknowledgement="REQUEST_IS_ACCEPTED", delay_seconds=HOLD_SECONDS)
    answers: list[urllib3.BaseHTTPResponse] = []
    first = threading.Thread(target=lambda: answers.append(signed_block(emulator, url, request_id)))
    first.start()
    wait_for(lambda: emulator.received, seconds=5)
    answers.append(signed_block(emulator, url, request_id))  # sent while the first is still being answered
    first.join(timeout=10)
    emulator.set_switches(acknowledgement="REQUEST_IS_QUEUED", delay_seconds=0)
    answers.append(signed_block(emulator, url, request_id))
    assert [(a.status, a.data) for a in answers] == [(201, b"REQUEST_IS_ACCEPTED")] * 3
    assert {a.headers["x-response-id"] for a in answers} == set(emulator.registry.tasks)
    assert len(emulator.registry.tasks) == 1


# ------------------------------------------------------------------------------------------------ payments
def payments(url: str, http: Client) -> BlockingAdapter:
    options = {"baseUrl": url, "token": DEMO_TOKEN, "timeoutSeconds": ADAPTER_TIMEOUT, "pollSeconds": "0.5"}
    return BlockingAdapter(payments_adapter.create(options, http.client), http.loop)


def payment(local: str, key: str) -> etree._Element:
    root = etree.Element(f"{{{PAYMENTS_NS}}}{local}", nsmap={None: PAYMENTS_NS})
    for name, value in (("serviceId", "P1011"), ("account", "7770017711"), ("paymentKey", key),
                        ("agentTransactionDate", "2015-02-17T16:48:37"), ("amountTo", "200.00")):
        etree.SubElement(root, f"{{{PAYMENTS_NS}}}{name}").text = value
    return root


def test_payments_pay_abandoned_mid_call_then_handled_again_pays_once(
    payments_backend: tuple[payments_emulator.PaymentsEmulator, str], http: Client
) -> None:
    emulator, url = payments_backend
    adapter = payments(url, http)
    key = str(uuid.uuid4())
    balance = emulator.balance
    emulator.set_switches(delay_seconds=HOLD_SECONDS)
    first = adapter.handle(payment("PayRequest", key), deadline())
    assert first.pending is not None and "SCE010" in first.status_message  # its fate unknown to the caller
    emulator.set_switches(delay_seconds=0)
    wait_for(emulator.payments, seconds=5)  # the processing centre paid all the same
    again = adapter.handle(payment("PayRequest", key), deadline())
    [made] = emulator.payments()
    assert again.pending is None and leaf(again.data, PAYMENTS_NS, "result") == "0"
    assert leaf(again.data, PAYMENTS_NS, "transactionId") == str(made.transaction_id)
    bodies = [r.body for r in emulator.requests_to("pay")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert emulator.balance == balance - Decimal("200.00")


def test_payments_check_abandoned_mid_call_then_handled_again_names_the_same_transaction(
    payments_backend: tuple[payments_emulator.PaymentsEmulator, str], http: Client
) -> None:
    emulator, url = payments_backend
    adapter = payments(url, http)
    key = str(uuid.uuid4())
    emulator.set_switches(delay_seconds=HOLD_SECONDS)
    abandoned(lambda: adapter.handle(payment("CheckRequest", key), deadline()))
    emulator.set_switches(delay_seconds=0)
    wait_for(lambda: emulator.transactions, seconds=5)
    again = adapter.handle(payment("CheckRequest", key), deadline())
    [made] = emulator.transactions.values()
    assert leaf(again.data, PAYMENTS_NS, "transactionId") == str(made.transaction_id)
    bodies = [r.body for r in emulator.requests_to("check")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]


# ------------------------------------------------------------------------------------------------ ecs
def ecs(url: str, http: Client) -> BlockingAdapter:
    options = {"baseUrl": url, "clientId": "acceptor-1", "clientSecret": "secret-1", "connectionType": "1",
               "timeoutSeconds": ADAPTER_TIMEOUT}
    return BlockingAdapter(ecs_adapter.create(options, http.client), http.loop)


def ecs_request(name: str, *children: tuple[str, object]) -> etree._Element:
    element = etree.Element(f"{{{ECS_NS}}}{name}", nsmap={None: ECS_NS})
    for local, value in children:
        etree.SubElement(element, f"{{{ECS_NS}}}{local}").text = str(value)
    return element


def test_ecs_check_repeated_after_a_lost_answer_records_one_use(ecs_backend: tuple[ecs_emulator.EcsEmulator, str], http: Client) -> None:
    emulator, url = ecs_backend
    adapter = ecs(url, http)
    check = ecs_request("CheckClientBenefitsRequest", ("serviceId", 1), ("organizationTerminalId", 11), ("clientCode", "AAABBBCCC"))
    adapter.handle(ecs_request("GetOrganizationServicesRequest"), deadline())  # a token first: only the check is held
    emulator.set_switches(delay_seconds=HOLD_SECONDS)
    abandoned(lambda: adapter.handle(check, deadline()))
    emulator.set_switches(delay_seconds=0)
    wait_for(lambda: [t for t in emulator.transactions.values() if t.state == "PENDING"], seconds=5)
    answered = adapter.handle(check, deadline())
    transaction_id = leaf(answered.data, ECS_NS, "transactionId")
    confirm = ecs_request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20), ("transactionId", transaction_id))
    adapter.handle(confirm, deadline())
    adapter.handle(confirm, deadline())  # the confirmation repeated: still one use
    # ЕЦС has no idempotency key: the lost check left a second, unconfirmed transaction. It is not a use and
    # the bank deletes it unconfirmed (spec §11.2 item 5); the one confirmed is the one the caller was told.
    states = sorted((t.id, t.state) for t in emulator.transactions.values() if t.id >= ecs_emulator.FIRST_NEW_TRANSACTION_ID)
    assert states == [(int(transaction_id or 0) - 1, "PENDING"), (int(transaction_id or 0), "CONFIRMED")]
    emulator.set_switches(pending_ttl_seconds=0)
    with pytest.raises(GatewayError) as caught:
        adapter.handle(ecs_request("ConfirmTransactionRequest", ("clientId", 1), ("benefitCategoryId", 20),
                                   ("transactionId", int(transaction_id or 0) - 1)), deadline())
    assert caught.value.sub_error is not None and "deleted" in caught.value.sub_error.message
