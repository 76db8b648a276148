"""The delivery worker on one event loop: hundreds of deliveries in flight to a slow recipient cost no thread each,
nor do calls waiting on an adapter's slow back office, and a delivery point's ``maxConcurrentCalls`` still caps
what it receives at once.

The worker runs as production runs it (``gateway worker``, its own process); the messages are accepted by
``gateway serve``. The recipient is an asyncio server holding each call for a few seconds, so that it never
queues what the worker sends and its count of calls in flight is the worker's.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest
from sqlalchemy import Engine, func, select

from gateway.serving import BackgroundAsgiServer
from gateway.soap import async_messages as wire
from gateway.soap.envelope import build_envelope, parse_envelope
from gateway.store.models import AsyncMessage, DeliveryTask
from registry.admin import RegistryAdmin
from tests.conftest import REPO_ROOT
from tests.holding import Answer, HoldingServer, RelayingServer
from tests.served import served_gateway
from tests.test_async_channel import accepted
from tests.wire import async_send, post, wait_for

WIDE_POINT, NARROW_POINT, BACKLOG_POINT, OTHER_POINT = 9501, 9502, 9503, 9504
WIDE_SERVICE, NARROW_SERVICE, BACKLOG_SERVICE, OTHER_SERVICE = "LoopWidePush", "LoopNarrowPush", "LoopBacklog", "LoopOther"
WIDE_MESSAGES, NARROW_MESSAGES, NARROW_LIMIT = 300, 40, 10
BACKLOG_MESSAGES, BACKLOG_LIMIT, BACKLOG_SECONDS = 400, 2, 0.01
RECIPIENT_SECONDS = 3.0
ADAPTER_POINT, ADAPTER_SERVICE, ADAPTER_MESSAGES = 9505, "LoopAdapterPush", 60  # far beyond the worker's 4 threads
BALANCE = '<data><BalanceRequest xmlns="urn:gateway:adapters:payments"/></data>'
WORKER_THREADS_SETTING = 4
MAX_WORKER_THREADS = 3 + 2 * WORKER_THREADS_SETTING


class SlowRecipient(HoldingServer):
    """A PUSH recipient acknowledging each sendMessage after ``RECIPIENT_SECONDS``; keeps the message ids it
    acknowledged."""

    def __init__(self, seconds: float = RECIPIENT_SECONDS) -> None:
        super().__init__(seconds)
        self.acknowledged: list[str] = []

    async def answer(self, scope: dict[str, Any], body: bytes) -> Answer:
        message_id = parse_envelope(body).payload.findtext("request/messageInfo/messageId") or ""
        answer = build_envelope(wire.build_send_message_response(message_id, message_id, "2026-12-06T10:00:00.000+05:00", "s"))
        self.acknowledged.append(message_id)
        return 200, b"text/xml; charset=utf-8", answer


@pytest.fixture(scope="module")
def recipients(engine: Engine, loaded_registry: None) -> Iterator[dict[int, SlowRecipient]]:
    admin = RegistryAdmin(engine)
    recipients = {WIDE_POINT: SlowRecipient(), NARROW_POINT: SlowRecipient(), BACKLOG_POINT: SlowRecipient(BACKLOG_SECONDS),
                  OTHER_POINT: SlowRecipient(0.0)}
    points = ((WIDE_POINT, WIDE_SERVICE, 1000), (NARROW_POINT, NARROW_SERVICE, NARROW_LIMIT),
              (BACKLOG_POINT, BACKLOG_SERVICE, BACKLOG_LIMIT), (OTHER_POINT, OTHER_SERVICE, 8))
    with contextlib.ExitStack() as servers:
        for point, service, limit in points:
            server = servers.enter_context(BackgroundAsgiServer(recipients[point]))
            admin.create("delivery-points", {"id": point, "url": f"{server.url}/", "callMode": 2, "asyncCallTimeoutSec": 30,
                                             "maxConcurrentCalls": limit}, "test")
            admin.create("services", {"key": service, "name": f"PUSH to a recipient taking {recipients[point].seconds} s",
                                      "ownerIS": "asyncprov", "interactionMode": "ASYNC", "sendMode": "PUSH",
                                      "defaultDeliveryPoint": point, "users": [{"informationSystem": "pep"}]}, "test")
        yield recipients


@contextlib.contextmanager
def delivery_worker(database_url: str, concurrency: int) -> Iterator[psutil.Process]:
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_DELIVERY_CONCURRENCY=str(concurrency),
               GATEWAY_DELIVERY_POLL_SECONDS="0.05", GATEWAY_THREADS=str(WORKER_THREADS_SETTING), GATEWAY_REGISTRY_REFRESH_SECONDS="0")
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def accept(database_url: str, service: str, count: int, data: str | None = None) -> list[str]:
    """``count`` messages for ``service`` accepted by ``gateway serve`` (its own delivery worker off)."""
    request = async_send(service, data=data) if data is not None else async_send(service)
    with served_gateway(database_url, workers="1") as gateway, ThreadPoolExecutor(max_workers=8) as pool:
        url = f"{gateway.url}/bip-async/"
        return list(pool.map(lambda _: accepted(post(url, request))[0], range(count)))


def delivered(engine: Engine, message_ids: list[str]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(
            select(func.count()).select_from(AsyncMessage)
            .where(AsyncMessage.message_id.in_(message_ids), AsyncMessage.state == "DELIVERED")
        ) or 0)


def test_hundreds_of_slow_deliveries_in_flight_hold_no_thread_each(
    database_url: str, engine: Engine, recipients: dict[int, SlowRecipient]
) -> None:
    recipient = recipients[WIDE_POINT]
    message_ids = accept(database_url, WIDE_SERVICE, WIDE_MESSAGES)
    with delivery_worker(database_url, concurrency=WIDE_MESSAGES) as worker:
        # All of them at the recipient at once: one worker process, not one thread per delivery.
        wait_for(lambda: recipient.peak == WIDE_MESSAGES, seconds=RECIPIENT_SECONDS * 3)
        threads_in_flight = worker.num_threads()
        wait_for(lambda: delivered(engine, message_ids) == WIDE_MESSAGES, seconds=60)
    # Its threads: the loop's, the scheduler's, the group-commit writer, and at most GATEWAY_THREADS each for the
    # database and the adapters.
    assert threads_in_flight <= MAX_WORKER_THREADS, threads_in_flight
    assert sorted(recipient.acknowledged) == sorted(message_ids), "each message delivered once"
    with engine.connect() as connection:
        states = connection.execute(
            select(DeliveryTask.state, DeliveryTask.attempts).where(DeliveryTask.message_id.in_(message_ids))
        ).all()
    assert set(states) == {("DONE", 1)}


def test_a_points_max_concurrent_calls_caps_what_the_worker_sends_it_at_once(
    database_url: str, engine: Engine, recipients: dict[int, SlowRecipient]
) -> None:
    recipient = recipients[NARROW_POINT]
    message_ids = accept(database_url, NARROW_SERVICE, NARROW_MESSAGES)
    with delivery_worker(database_url, concurrency=200):
        # 40 messages, 10 at a time, 3 s each: four rounds.
        wait_for(lambda: delivered(engine, message_ids) == NARROW_MESSAGES, seconds=RECIPIENT_SECONDS * 4 * 4)
    assert recipient.peak == NARROW_LIMIT
    assert sorted(recipient.acknowledged) == sorted(message_ids)


def test_a_point_with_a_long_queue_does_not_hold_back_the_other_points(
    database_url: str, engine: Engine, recipients: dict[int, SlowRecipient]
) -> None:
    # 400 queued for a point taking 2 calls at a time, 10 ms each (2 s to drain), older than the other point's
    # message and far more than the worker's 20 slots: a claim of the oldest tasks would bring that point's alone,
    # each time one of its two slots freed, until its queue was nearly gone.
    backlog = accept(database_url, BACKLOG_SERVICE, BACKLOG_MESSAGES)
    other = accept(database_url, OTHER_SERVICE, 1)
    with delivery_worker(database_url, concurrency=20):
        wait_for(lambda: delivered(engine, other) == 1, seconds=10)
        still_queued = BACKLOG_MESSAGES - delivered(engine, backlog)
        wait_for(lambda: delivered(engine, backlog) == BACKLOG_MESSAGES, seconds=60)
    assert still_queued > BACKLOG_MESSAGES // 2, f"the other point waited until {still_queued} were left"
    assert recipients[BACKLOG_POINT].peak == BACKLOG_LIMIT
    assert sorted(recipients[BACKLOG_POINT].acknowledged) == sorted(backlog)


def test_calls_waiting_on_an_adapters_slow_back_office_hold_no_thread_each(
    database_url: str, engine: Engine, loaded_registry: None, backend_servers: dict[str, tuple[Any, str]]
) -> None:
    back_office = RelayingServer(backend_servers["payments"][1], RECIPIENT_SECONDS)
    with BackgroundAsgiServer(back_office) as server:
        admin = RegistryAdmin(engine)
        admin.create("delivery-points", {"id": ADAPTER_POINT, "callMode": 2, "asyncCallTimeoutSec": 30, "maxConcurrentCalls": 1000,
                                         "adapter": {"name": "payments", "options": {
                                             "baseUrl": server.url, "token": "${GATEWAY_ADAPTER_TEST_PAYMENTS_TOKEN}"}}}, "test")
        admin.create("services", {"key": ADAPTER_SERVICE, "name": "An adapter whose back office takes 3 s",
                                  "ownerIS": "paycentre", "interactionMode": "ASYNC", "sendMode": "PUSH",
                                  "defaultDeliveryPoint": ADAPTER_POINT, "users": [{"informationSystem": "pep"}]}, "test")
        message_ids = accept(database_url, ADAPTER_SERVICE, ADAPTER_MESSAGES, BALANCE)
        with delivery_worker(database_url, concurrency=200) as worker:
            # All of them at the back office at once (on adapter threads, 4 would be).
            wait_for(lambda: back_office.peak == ADAPTER_MESSAGES, seconds=RECIPIENT_SECONDS * 3)
            threads_in_flight = worker.num_threads()
            wait_for(lambda: delivered(engine, message_ids) == ADAPTER_MESSAGES, seconds=60)
    assert threads_in_flight <= MAX_WORKER_THREADS, threads_in_flight
