"""One event loop per process: 1,000 calls in flight to a slow provider cost memory, not threads, and ``/health``
answers at once while they wait; calls waiting on an adapter's slow back office hold no thread either.

The gateway runs as production runs it (``gateway serve``: uvicorn, one worker process). The provider is an
asyncio server of its own that holds each call for a few seconds, so that it never queues what the gateway sends;
so is the slow back office, which then passes the call on to the payments emulator and relays its answer.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import psutil
import pytest
import urllib3
from sqlalchemy import Engine

from gateway.serving import BackgroundAsgiServer
from registry.admin import RegistryAdmin
from tests.holding import Answer, HoldingServer, RelayingServer
from tests.served import ServedGateway, served_gateway
from tests.wire import post, sync_request

SLOW_POINT, SLOW_SERVICE = 9301, "EventLoopSlowService"
SLOW_BACKEND_POINT, SLOW_BACKEND_SERVICE = 9302, "EventLoopSlowBackend"
BACKEND_CALLS = 300  # far beyond the server's 8 threads
PAYMENTS = "urn:gateway:adapters:payments"
CALLS = 1000
PROVIDER_SECONDS = 4.0
HEALTH_LIMIT_SECONDS = 0.1


class SlowProvider(HoldingServer):
    """A provider answering every call with ``answer`` after ``PROVIDER_SECONDS``."""

    def __init__(self, answer: bytes) -> None:
        super().__init__(PROVIDER_SECONDS)
        self._answer = answer

    async def answer(self, scope: dict[str, Any], body: bytes) -> Answer:
        return 200, b"text/xml; charset=utf-8", self._answer


@pytest.fixture(scope="module")
def slow_provider(provider_url: str) -> Iterator[tuple[SlowProvider, str]]:
    # The emulator's own answer to a SendMessage, served again by the slow provider.
    answer = post(f"{provider_url}/provider", sync_request())
    assert answer.status == 200
    provider = SlowProvider(answer.body)
    with BackgroundAsgiServer(provider) as server:
        yield provider, server.url


@pytest.fixture(scope="module")
def slow_backend(backend_servers: dict[str, tuple[Any, str]]) -> Iterator[tuple[RelayingServer, str]]:
    backend = RelayingServer(backend_servers["payments"][1], PROVIDER_SECONDS)
    with BackgroundAsgiServer(backend) as server:
        yield backend, server.url


@pytest.fixture(scope="module")
def gateway(
    database_url: str, engine: Engine, loaded_registry: None, slow_provider: tuple[SlowProvider, str],
    slow_backend: tuple[RelayingServer, str],
) -> Iterator[ServedGateway]:
    admin = RegistryAdmin(engine)
    admin.create("delivery-points", {"id": SLOW_POINT, "url": f"{slow_provider[1]}/provider", "callMode": 1,
                                     "maxConcurrentCalls": CALLS}, "test")
    admin.create("services", {"key": SLOW_SERVICE, "name": "A provider taking 4 s", "ownerIS": "gbdfl",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": SLOW_POINT,
                              "users": [{"informationSystem": "pep"}]}, "test")
    admin.create("delivery-points", {"id": SLOW_BACKEND_POINT, "callMode": 1, "maxConcurrentCalls": CALLS, "adapter": {
        "name": "payments", "options": {"baseUrl": slow_backend[1], "token": "${GATEWAY_ADAPTER_TEST_PAYMENTS_TOKEN}"}}}, "test")
    admin.create("services", {"key": SLOW_BACKEND_SERVICE, "name": "A back office taking 4 s", "ownerIS": "paycentre",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": SLOW_BACKEND_POINT,
                              "users": [{"informationSystem": "pep"}]}, "test")
    with served_gateway(database_url, workers="1", threads="8", sync_timeout_seconds="30") as served:
        yield served


async def _call_all(url: str, count: int, service: str = SLOW_SERVICE, data: str | None = None) -> list[int]:
    body = (sync_request(service, data=data) if data else sync_request(service)).encode()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one() -> int:
            async with session.post(f"{url}/bip-sync/", data=body, headers={"Content-Type": "text/xml"}) as response:
                await response.read()
                return response.status
        return list(await asyncio.gather(*(one() for _ in range(count))))


def test_a_thousand_calls_to_a_slow_provider_hold_no_threads(
    gateway: ServedGateway, slow_provider: tuple[SlowProvider, str]
) -> None:
    provider = slow_provider[0]
    http = urllib3.PoolManager(retries=False, timeout=10.0)
    assert post(f"{gateway.url}/bip-sync/", sync_request(SLOW_SERVICE)).status == 200  # warm: password, registry
    worker = gateway.worker_processes()[0]
    threads_before, memory_before = worker.num_threads(), worker.memory_info().rss
    statuses: list[int] = []
    callers = threading.Thread(target=lambda: statuses.extend(asyncio.run(_call_all(gateway.url, CALLS))))
    callers.start()
    deadline = time.monotonic() + PROVIDER_SECONDS + 20
    while provider.in_flight < CALLS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.in_flight == CALLS, f"only {provider.in_flight} calls reached the provider at once"
    threads_during, memory_during = worker.num_threads(), worker.memory_info().rss
    polls = []
    while provider.in_flight == CALLS:
        started = time.perf_counter()
        assert http.request("GET", f"{gateway.url}/health").status == 200
        polls.append(time.perf_counter() - started)
        time.sleep(0.05)
    callers.join(timeout=60)
    assert statuses.count(200) == CALLS, {status: statuses.count(status) for status in set(statuses)}
    assert len(polls) >= 5 and max(polls) <= HEALTH_LIMIT_SECONDS, sorted(polls)[-5:]
    # No thread per call: the worker has the threads it had (a few of its executors' may have started meanwhile).
    assert threads_during <= threads_before + 8, (threads_before, threads_during)
    per_call = (memory_during - memory_before) / CALLS
    assert per_call < 256 * 1024, f"{per_call / 1024:.0f} KiB a call in flight"
    print(f"threads {threads_before} -> {threads_during}; {per_call / 1024:.0f} KiB a call in flight; "
          f"/health worst {max(polls) * 1000:.1f} ms over {len(polls)} polls")


def test_calls_waiting_on_an_adapters_slow_back_office_hold_no_threads(
    gateway: ServedGateway, slow_backend: tuple[RelayingServer, str]
) -> None:
    """Every call reaches the back office at once (an adapter call is a coroutine: on threads, 8 would)."""
    backend = slow_backend[0]
    data = f'<data><BalanceRequest xmlns="{PAYMENTS}"/></data>'
    warm = post(f"{gateway.url}/bip-sync/", sync_request(SLOW_BACKEND_SERVICE, data=data))
    assert warm.status == 200, warm.body[:500]
    worker = gateway.worker_processes()[0]
    threads_before = worker.num_threads()
    statuses: list[int] = []
    callers = threading.Thread(
        target=lambda: statuses.extend(asyncio.run(_call_all(gateway.url, BACKEND_CALLS, SLOW_BACKEND_SERVICE, data)))
    )
    callers.start()
    deadline = time.monotonic() + PROVIDER_SECONDS + 20
    while backend.in_flight < BACKEND_CALLS and time.monotonic() < deadline and callers.is_alive():
        time.sleep(0.05)
    threads_during = worker.num_threads()
    callers.join(timeout=60)
    assert backend.peak == BACKEND_CALLS, f"at most {backend.peak} calls reached the back office at once"
    assert statuses.count(200) == BACKEND_CALLS, {status: statuses.count(status) for status in set(statuses)}
    assert threads_during <= threads_before + 8, (threads_before, threads_during)
