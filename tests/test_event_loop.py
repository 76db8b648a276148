"""One event loop per process: 1,000 calls in flight to a slow provider cost memory, not threads, and ``/health``
answers at once while they wait.

The gateway runs as production runs it (``gateway serve``: uvicorn, one worker process). The provider is an
asyncio server of its own that holds each call for a few seconds, so that it never queues what the gateway sends.
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
from tests.served import ServedGateway, served_gateway
from tests.wire import post, sync_request

SLOW_POINT, SLOW_SERVICE = 9301, "EventLoopSlowService"
CALLS = 1000
PROVIDER_SECONDS = 4.0
HEALTH_LIMIT_SECONDS = 0.1


class SlowProvider:
    """An ASGI provider answering every call with ``answer`` after ``PROVIDER_SECONDS``; counts calls in flight."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(PROVIDER_SECONDS)
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/xml; charset=utf-8"), (b"content-length", str(len(self.answer)).encode())]})
        await send({"type": "http.response.body", "body": self.answer})


@pytest.fixture(scope="module")
def slow_provider(provider_url: str) -> Iterator[tuple[SlowProvider, str]]:
    # The emulator's own answer to a SendMessage, served again by the slow provider.
    answer = post(f"{provider_url}/provider", sync_request())
    assert answer.status == 200
    provider = SlowProvider(answer.body)
    with BackgroundAsgiServer(provider) as server:
        yield provider, server.url


@pytest.fixture(scope="module")
def gateway(database_url: str, engine: Engine, loaded_registry: None, slow_provider: tuple[SlowProvider, str]) -> Iterator[ServedGateway]:
    admin = RegistryAdmin(engine)
    admin.create("delivery-points", {"id": SLOW_POINT, "url": f"{slow_provider[1]}/provider", "callMode": 1,
                                     "maxConcurrentCalls": CALLS}, "test")
    admin.create("services", {"key": SLOW_SERVICE, "name": "A provider taking 4 s", "ownerIS": "gbdfl",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": SLOW_POINT,
                              "users": [{"informationSystem": "pep"}]}, "test")
    with served_gateway(database_url, workers="1", threads="8", sync_timeout_seconds="30") as served:
        yield served


async def _call_all(url: str, count: int) -> list[int]:
    body = sync_request(SLOW_SERVICE).encode()
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
