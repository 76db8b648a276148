"""Finality and idempotency of the payments adapter (spec §5, §6): non-final answers become PendingWork that
``poll`` resends byte for byte with growing intervals until a final code, and however a payment is resent, the
processing centre makes it once."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from emulators.http import reply
from gateway.serving import BackgroundServer
from emulators.payments import PaymentsEmulator, make_emulator
from emulators.payments_seed import DEMO_TOKEN, REVOKED_TOKEN
from gateway.adapters.base import AdapterAnswer
from gateway.adapters.payload import PayloadSchema
from gateway.adapters.payments import create
from gateway.adapters.payments.messages import derive_agent_transaction_id
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread

NS = "urn:gateway:adapters:payments"
SCHEMA = PayloadSchema.of("payments")


@pytest.fixture
def emulator() -> PaymentsEmulator:
    return make_emulator(token_header="X-Agent-Token")


@pytest.fixture
def server(emulator: PaymentsEmulator) -> Iterator[BackgroundServer]:
    with BackgroundServer(emulator) as running:
        yield running


@pytest.fixture
def http(loop_thread: LoopThread) -> Iterator[AsyncHttpClient]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield client
    loop_thread.run(client.close())


def make_adapter(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread,
                 **extra: str) -> BlockingAdapter:
    options = {"baseUrl": server.url, "token": DEMO_TOKEN, "timeoutSeconds": "3", "pollSeconds": "0.5",
               "maxPollSeconds": "3", **extra}
    return BlockingAdapter(create(options, http), loop_thread)


@pytest.fixture
def adapter(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread) -> BlockingAdapter:
    return make_adapter(server, http, loop_thread)


def pay(atid: int | None = 1233355, amount: str = "200.00", account: str = "7770017711", key: str | None = None,
        amount_from: str | None = None, local: str = "PayRequest") -> etree._Element:
    root = etree.Element(f"{{{NS}}}{local}", nsmap={None: NS})
    identity = ("agentTransactionId", str(atid)) if key is None else ("paymentKey", key)
    children = [("serviceId", "P1011"), ("account", account), identity, ("agentTransactionDate", "2015-02-17T16:48:37"),
                ("amountTo", amount)]
    if amount_from is not None:
        children.append(("amountFrom", amount_from))
    for name, value in children:
        etree.SubElement(root, f"{{{NS}}}{name}").text = value
    return root


def deadline() -> float:
    return time.monotonic() + 5


def field(answer: AdapterAnswer, local: str) -> str | None:
    SCHEMA.check_answer(answer.data)
    found = answer.data.find(f"{{{NS}}}{local}")
    return None if found is None else found.text


def roundtrip(reference: dict[str, Any]) -> dict[str, Any]:
    """What the gateway's database gives back: the reference must survive JSON."""
    return json.loads(json.dumps(reference))


def poll_until_final(adapter: BlockingAdapter, first: AdapterAnswer, limit: int = 10) -> tuple[AdapterAnswer, list[AdapterAnswer]]:
    """Poll as the gateway does, without sleeping; returns the final answer and the pending ones."""
    pending = [first]
    answer = first
    for attempt in range(1, limit + 1):
        assert answer.pending is not None
        answer = adapter.poll(roundtrip(answer.pending.reference), attempt, deadline())
        if answer.pending is None:
            return answer, pending
        pending.append(answer)
    raise AssertionError(f"still pending after {limit} polls")


def pay_bodies(emulator: PaymentsEmulator) -> list[bytes]:
    return [r.body for r in emulator.requests_to("pay")]


def test_non_final_three_times_then_final_pays_once(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=3)
    first = adapter.handle(pay(), deadline())
    assert (first.status_code, field(first, "result"), field(first, "final")) == ("PENDING", "1", "false")
    assert first.pending is not None
    assert first.pending.reference["agentTransactionId"] == "1233355"
    final, pending = poll_until_final(adapter, first)
    assert len(pending) == 3
    assert [p.pending.poll_after_seconds for p in pending if p.pending] == [0.5, 1.0, 2.0]
    assert (final.status_code, field(final, "result"), field(final, "final")) == ("OK", "0", "true")
    assert field(final, "transactionId") == field(first, "transactionId")
    bodies = pay_bodies(emulator)
    assert len(bodies) == 4 and len(set(bodies)) == 1  # resent unchanged
    assert len(emulator.payments()) == 1
    assert emulator.balance == Decimal("509255.9000")


def test_backoff_grows_with_attempt_up_to_the_cap(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=100)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    later = adapter.poll(first.pending.reference, 12, deadline())
    assert later.pending is not None and later.pending.poll_after_seconds == 3.0


def test_security_review_153_then_success(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    first = adapter.handle(pay(account="7770000153"), deadline())
    assert field(first, "result") == "153"
    final, pending = poll_until_final(adapter, first)
    assert [field(p, "result") for p in pending] == ["153", "153"]
    assert field(final, "result") == "0"


def test_pending_that_ends_in_300_is_a_provider_fault(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=1, non_final_outcome=300)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    with pytest.raises(GatewayError) as caught:
        adapter.poll(first.pending.reference, 1, deadline())
    assert caught.value.error is ErrorCode.PROVIDER_FAULT and caught.value.sub_error.code == "300"
    assert emulator.payments() == []


def test_insufficient_funds_220_until_topped_up(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.balance = Decimal("150.0000")
    first = adapter.handle(pay(), deadline())
    assert field(first, "result") == "220" and first.pending is not None
    again = adapter.poll(first.pending.reference, 1, deadline())
    assert field(again, "result") == "220"
    emulator.top_up(Decimal("100"))
    final = adapter.poll(first.pending.reference, 2, deadline())
    assert field(final, "result") == "0"
    assert emulator.balance == Decimal("50.0000")


def test_insufficient_funds_never_topped_up_ends_in_250(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.balance = Decimal("10")
    emulator.set_switches(insufficient_funds_polls=2)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    assert adapter.poll(first.pending.reference, 1, deadline()).pending is not None
    with pytest.raises(GatewayError) as caught:
        adapter.poll(first.pending.reference, 2, deadline())
    assert caught.value.sub_error.code == "250"


def test_unacceptable_commission_255_is_not_final(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    first = adapter.handle(pay(amount_from="800.00"), deadline())
    assert field(first, "result") == "255" and first.pending is not None
    with pytest.raises(GatewayError) as caught:
        poll_until_final(adapter, first)
    assert caught.value.sub_error.code == "300"


def test_answer_lost_after_payment_is_resolved_by_polling(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(lose_answers=1)
    first = adapter.handle(pay(), deadline())
    assert first.status_code == "PENDING" and field(first, "result") is None
    assert len(emulator.payments()) == 1  # the processing centre did pay
    final, _ = poll_until_final(adapter, first)
    assert field(final, "result") == "0"
    assert len(emulator.payments()) == 1
    assert emulator.balance == Decimal("509255.9000")


def test_backend_down_keeps_a_payment_pending_but_fails_a_check(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(down=True)
    with pytest.raises(GatewayError) as caught:
        adapter.handle(pay(local="CheckRequest"), deadline())
    assert caught.value.error is ErrorCode.PROVIDER_UNREACHABLE
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None and "SCE009" in first.status_message
    assert adapter.poll(first.pending.reference, 1, deadline()).pending is not None
    emulator.set_switches(down=False)
    final = adapter.poll(first.pending.reference, 2, deadline())
    assert field(final, "result") == "0" and len(emulator.payments()) == 1


def test_dropped_connection_is_unreachable(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(down=True, down_mode="drop")
    with pytest.raises(GatewayError) as caught:
        adapter.handle(pay(local="CheckRequest"), deadline())
    assert caught.value.error is ErrorCode.PROVIDER_UNREACHABLE


def test_slow_backend_times_out_and_the_payment_stays_pending(server: BackgroundServer, http: AsyncHttpClient,
                                                              loop_thread: LoopThread,
                                                              emulator: PaymentsEmulator) -> None:
    adapter = make_adapter(server, http, loop_thread, timeoutSeconds="0.2")
    emulator.set_switches(delay_seconds=0.5)
    with pytest.raises(GatewayError) as caught:
        adapter.handle(pay(local="CheckRequest"), deadline())
    assert caught.value.error is ErrorCode.PROVIDER_TIMEOUT
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None and "SCE010" in first.status_message
    emulator.set_switches(delay_seconds=0)
    time.sleep(0.6)  # let the slow first sending finish on the emulator's side
    final = adapter.poll(first.pending.reference, 1, deadline())
    assert field(final, "result") == "0" and len(emulator.payments()) == 1


def test_resent_message_with_payment_key_pays_once(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    key = "3f2c9a2e-1d7b-4c55-9a0b-6a1f0e2d9c11"
    first = adapter.handle(pay(atid=None, key=key), deadline())
    again = adapter.handle(pay(atid=None, key=key), deadline())
    atid = derive_agent_transaction_id(key)
    assert 0 < atid < 10**18
    assert field(first, "agentTransactionId") == field(again, "agentTransactionId") == str(atid)
    assert field(first, "transactionId") == field(again, "transactionId")
    assert field(first, "statusDate") == field(again, "statusDate")  # a replay, not a second payment
    assert len(emulator.payments()) == 1
    other = adapter.handle(pay(atid=None, key=key + "-2"), deadline())
    assert field(other, "agentTransactionId") != str(atid) and len(emulator.payments()) == 2


def test_changed_body_under_a_final_payment_is_215(adapter: BlockingAdapter) -> None:
    adapter.handle(pay(), deadline())
    with pytest.raises(GatewayError) as caught:
        adapter.handle(pay(amount="300.00"), deadline())
    assert caught.value.error is ErrorCode.PROVIDER_FAULT and caught.value.sub_error.code == "215"


def test_202_on_a_repeat_keeps_the_payment_pending(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=2)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    changed = dict(first.pending.reference, body=first.pending.reference["body"].replace("200.00", "250.00"))
    repeat = adapter.poll(changed, 1, deadline())
    assert (field(repeat, "result"), repeat.pending is not None) == ("202", True)
    final, pending = poll_until_final(adapter, first)
    assert field(final, "result") == "0" and len(pending) == 2
    assert [t.amount for t in emulator.payments()] == [Decimal("200.00")]


def test_202_on_a_first_pay_is_final(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(strict_two_phase=True)
    with pytest.raises(GatewayError) as caught:
        adapter.handle(pay(), deadline())
    assert caught.value.sub_error.code == "202"
    adapter.handle(pay(local="CheckRequest"), deadline())
    assert field(adapter.handle(pay(), deadline()), "result") == "0"


def test_pending_check_is_polled_too(adapter: BlockingAdapter, emulator: PaymentsEmulator) -> None:
    emulator.set_switches(check_non_final_polls=2)
    first = adapter.handle(pay(local="CheckRequest"), deadline())
    assert (field(first, "result"), first.data.tag) == ("1", f"{{{NS}}}CheckResponse")
    final, pending = poll_until_final(adapter, first)
    assert len(pending) == 2 and field(final, "scheme") == "simple"


def test_give_up_after_the_configured_time(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread,
                                           emulator: PaymentsEmulator) -> None:
    adapter = make_adapter(server, http, loop_thread, giveUpSeconds="60")
    emulator.set_switches(non_final_polls=5)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    stale = dict(first.pending.reference, firstSentAt=time.time() - 61)
    with pytest.raises(GatewayError) as caught:
        adapter.poll(stale, 4, deadline())
    assert caught.value.error is ErrorCode.PROVIDER_TIMEOUT and "1233355" in str(caught.value)


def test_custom_token_header_and_revoked_token(server: BackgroundServer, http: AsyncHttpClient,
                                               loop_thread: LoopThread, emulator: PaymentsEmulator) -> None:
    custom = make_adapter(server, http, loop_thread, tokenHeader="X-Agent-Token")
    assert field(custom.handle(pay(local="CheckRequest"), deadline()), "result") == "0"
    assert emulator.requests_to("check")[0].headers["X-Agent-Token"] == DEMO_TOKEN
    assert "Authorization" not in emulator.requests_to("check")[0].headers
    revoked = make_adapter(server, http, loop_thread, token=REVOKED_TOKEN)
    with pytest.raises(GatewayError) as caught:
        revoked.handle(pay(atid=5), deadline())
    assert caught.value.error is ErrorCode.PROVIDER_FAULT and caught.value.sub_error.code == "300"
    assert "401" in caught.value.sub_error.message


def test_revoked_token_during_polling_keeps_the_payment_pending(adapter: BlockingAdapter,
                                                                emulator: PaymentsEmulator) -> None:
    emulator.set_switches(non_final_polls=2)
    first = adapter.handle(pay(), deadline())
    assert first.pending is not None
    emulator.tokens[DEMO_TOKEN] = "revoked"
    assert adapter.poll(first.pending.reference, 1, deadline()).pending is not None


def test_invalid_answers_are_refused(http: AsyncHttpClient, loop_thread: LoopThread) -> None:
    answers = iter([b'{"result":0,"resultMessage":"ok","transactionId":1,"agentTransactionId":999}', b"<html/>"])

    def backend(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return reply(start_response, 200, next(answers), "application/json")

    with BackgroundServer(backend) as running:
        adapter = BlockingAdapter(create({"baseUrl": running.url}, http), loop_thread)
        with pytest.raises(GatewayError) as caught:
            adapter.handle(pay(local="CheckRequest"), deadline())
        assert caught.value.error is ErrorCode.PROVIDER_RESPONSE_INVALID
        assert adapter.handle(pay(), deadline()).pending is not None  # a pay answered by garbage is unresolved


def test_poll_refuses_an_unusable_reference(adapter: BlockingAdapter) -> None:
    with pytest.raises(GatewayError) as caught:
        adapter.poll({"method": "pay"}, 1, deadline())
    assert caught.value.error is ErrorCode.INTERNAL_ERROR


def test_unreadable_success_of_a_pay_stays_pending(http: AsyncHttpClient, loop_thread: LoopThread) -> None:
    def backend(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = b'{"result":0,"transactionId":1,"transactionDate":"yesterday","agentTransactionId":1233355}'
        return reply(start_response, 200, body, "application/json")

    with BackgroundServer(backend) as running:
        answer = BlockingAdapter(create({"baseUrl": running.url}, http), loop_thread).handle(pay(), deadline())
    assert answer.pending is not None and "transactionDate" in answer.status_message
