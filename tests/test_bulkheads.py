"""A slow provider cannot starve the rest: per-delivery-point bulkheads, and a cap on one process's provider calls.

The gateway runs as in production (``gateway serve``: uvicorn, one worker process). A provider
that takes 2 s gets 100 callers at once; meanwhile a fast service keeps its unloaded latency (measured in the same
test, p99 within 100 ms of it) and ``/health`` answers within 100 ms, for 20 s of load.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.serving import BackgroundServer
from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
from journals.models import LoggingJournalEntry
from registry.admin import RegistryAdmin
from registry.models import DEFAULT_MAX_CONCURRENT_CALLS
from tests.served import ServedGateway, fault_code, served_gateway
from tests.wire import sync_request

SLOW_POINT, SLOW_SERVICE = 9201, "BulkheadSlowService"
PROVIDER_SECONDS = 2.0
CALLERS = 100
LOAD_SECONDS = 20.0
RAMP_SECONDS = 2.5  # callers start and the first slow calls are in flight before latencies count
REFUSED_PAUSE_SECONDS = 0.2  # a refused caller tries again shortly, as a client with a retry policy would
PROBE_INTERVAL_SECONDS = 0.05
HEALTH_LIMIT_SECONDS = 0.1
FAST_MARGIN_SECONDS = 0.1
PROCESS_CALLS = 14  # GATEWAY_MAX_PROVIDER_CALLS, above the points' default maxConcurrentCalls
CONNECTION_CLOSED = "connection closed"


class CountingProvider:
    """The provider emulator behind a counter of the calls it is serving at once."""

    def __init__(self, emulator: SyncProviderEmulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            return list(self.emulator(environ, start_response))
        finally:
            with self._lock:
                self.in_flight -= 1

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.in_flight


@pytest.fixture(scope="module")
def slow_provider() -> Iterator[CountingProvider]:
    provider = CountingProvider(SyncProviderEmulator(behaviour=ProviderBehaviour(delay_seconds=PROVIDER_SECONDS)))
    # More threads than callers: the provider itself never queues, whatever the gateway lets through.
    with BackgroundServer(provider, threads=CALLERS + 20) as server:
        provider.url = server.url  # type: ignore[attr-defined]
        yield provider


@pytest.fixture(scope="module")
def gateway(database_url: str, engine: Engine, loaded_registry: None, slow_provider: CountingProvider) -> Iterator[ServedGateway]:
    admin = RegistryAdmin(engine)
    admin.create("delivery-points", {"id": SLOW_POINT, "url": f"{slow_provider.url}/provider", "callMode": 1}, "test")  # type: ignore[attr-defined]
    admin.create("services", {"key": SLOW_SERVICE, "name": "A provider taking 2 s", "ownerIS": "gbdfl",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": SLOW_POINT,
                              "users": [{"informationSystem": "pep"}]}, "test")
    with served_gateway(database_url, workers="1", max_provider_calls=str(PROCESS_CALLS), registry_refresh_seconds="0.5") as served:
        yield served


@dataclass
class Outcome:
    status: int
    code: str | None
    seconds: float
    connection: str | None = None


def timed(call: Callable[[], urllib3.BaseHTTPResponse]) -> Outcome:
    started = time.perf_counter()
    response = call()
    seconds = time.perf_counter() - started
    return Outcome(response.status, fault_code(response.data) if response.status != 200 else None, seconds,
                   response.headers.get("Connection"))


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


@dataclass
class Load:
    """``callers`` threads calling the slow service until stopped, each trying again after a refusal."""

    url: str
    callers: int
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        http = urllib3.PoolManager(maxsize=self.callers, retries=False, timeout=30.0)
        for _ in range(self.callers):
            thread = threading.Thread(target=self._call_until_stopped, args=(http,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _call_until_stopped(self, http: urllib3.PoolManager) -> None:
        while not self._stop.is_set():
            try:
                outcome = timed(lambda: http.request("POST", f"{self.url}/bip-sync/", body=sync_request(SLOW_SERVICE).encode(),
                                                     headers={"Content-Type": "text/xml"}))
            except urllib3.exceptions.ProtocolError:
                # A pooled connection the server closed after its keep-alive timeout, picked up at that very moment
                # (HTTP's keep-alive race, which clients retry): counted, and bounded below.
                outcome = Outcome(0, CONNECTION_CLOSED, 0.0)
            self.outcomes.append(outcome)
            if outcome.status != 200:
                self._stop.wait(REFUSED_PAUSE_SECONDS)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PROVIDER_SECONDS + 10)


def probe(url: str, seconds: float) -> tuple[list[float], list[Outcome]]:
    """Alternate a fast-service call and a ``/health`` poll for ``seconds``: the fast latencies and the polls."""
    http = urllib3.PoolManager(retries=False, timeout=30.0)
    fast: list[float] = []
    health: list[Outcome] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        answer = timed(lambda: http.request("POST", f"{url}/bip-sync/", body=sync_request().encode(),
                                            headers={"Content-Type": "text/xml"}))
        assert answer.status == 200, answer
        fast.append(answer.seconds)
        health.append(timed(lambda: http.request("GET", f"{url}/health")))
        time.sleep(PROBE_INTERVAL_SECONDS)
    return fast, health


def journalled(engine: Engine, code: str) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(LoggingJournalEntry).where(
            LoggingJournalEntry.service_id == SLOW_SERVICE, LoggingJournalEntry.state == "REJECTED",
            LoggingJournalEntry.error_code == code))


def test_a_slow_provider_cannot_starve_the_fast_service_or_health(
    gateway: ServedGateway, slow_provider: CountingProvider, provider: SyncProviderEmulator, engine: Engine
) -> None:
    probe(gateway.url, 1.0)  # warm up: connections, caches, the sender's password verified once
    unloaded, _ = probe(gateway.url, 3.0)
    journalled_before = journalled(engine, "SCE027")
    with Load(gateway.url, CALLERS) as load:
        time.sleep(RAMP_SECONDS)
        slow_provider.reset_peak()
        loaded, health = probe(gateway.url, LOAD_SECONDS - RAMP_SECONDS)
    outcomes = load.outcomes
    assert p99(loaded) <= p99(unloaded) + FAST_MARGIN_SECONDS, (p99(unloaded), p99(loaded), sorted(loaded)[-5:])
    assert all(poll.status == 200 for poll in health)
    assert max(poll.seconds for poll in health) <= HEALTH_LIMIT_SECONDS, sorted(poll.seconds for poll in health)[-5:]
    # The bulkhead: never more than maxConcurrentCalls at the provider; the others refused at once, journalled.
    assert slow_provider.peak <= DEFAULT_MAX_CONCURRENT_CALLS, slow_provider.peak
    served = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.code == "SCE027"]
    assert {(o.status, o.code) for o in outcomes} <= {(200, None), (500, "SCE027"), (0, CONNECTION_CLOSED)}
    assert sum(o.code == CONNECTION_CLOSED for o in outcomes) <= len(outcomes) // 100
    assert len(served) >= DEFAULT_MAX_CONCURRENT_CALLS * (LOAD_SECONDS // PROVIDER_SECONDS - 1)
    assert refused and max(o.seconds for o in refused) < PROVIDER_SECONDS / 2
    assert journalled(engine, "SCE027") - journalled_before == len(refused)


def test_the_process_caps_its_provider_calls_and_health_answers_while_they_wait(
    gateway: ServedGateway, slow_provider: CountingProvider, engine: Engine
) -> None:
    admin = RegistryAdmin(engine)
    point = admin.get("delivery-points", str(SLOW_POINT))
    admin.update("delivery-points", str(SLOW_POINT), {**point, "maxConcurrentCalls": CALLERS}, "test")
    time.sleep(0.6)
    http = urllib3.PoolManager(retries=False, timeout=30.0)
    # The first message after the refresh interval loads the changed registry before it is routed.
    assert http.request("POST", f"{gateway.url}/bip-sync/", body=sync_request().encode()).status == 200
    with Load(gateway.url, 30) as load:
        time.sleep(RAMP_SECONDS)
        slow_provider.reset_peak()
        polls = []
        for _ in range(20):
            polls.append(timed(lambda: http.request("GET", f"{gateway.url}/health")))
            polls.append(timed(lambda: http.request("GET", f"{gateway.url}/bip-sync/?wsdl")))
            time.sleep(PROBE_INTERVAL_SECONDS)
    assert all(poll.status == 200 for poll in polls)
    assert max(poll.seconds for poll in polls) <= HEALTH_LIMIT_SECONDS, sorted(poll.seconds for poll in polls)[-5:]
    assert slow_provider.peak <= PROCESS_CALLS
    busy = [o for o in load.outcomes if o.code == "SCE028"]
    assert busy and max(o.seconds for o in busy) < PROVIDER_SECONDS / 2
    assert {(o.status, o.code) for o in load.outcomes} <= {(200, None), (500, "SCE028"), (0, CONNECTION_CLOSED)}
    assert journalled(engine, "SCE028") == len(busy)
