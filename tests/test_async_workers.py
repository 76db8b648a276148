"""Worker processes sharing one queue: a worker killed mid-delivery loses nothing and repeats at most what it had
in flight; two workers never deliver the same message twice, even when the planner believes the queue is idle."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
from tests.conftest import REPO_ROOT
from tests.test_async_channel import accepted, status_of
from tests.test_task_queue import idle_statistics  # noqa: F401  (a fixture)
from tests.wire import async_send, post, wait_for


@pytest.fixture()
def async_url(gateway_url: str) -> str:
    return f"{gateway_url}/bip-async/"


WORKER_CONCURRENCY = 8


@pytest.fixture()
def start_worker(database_url: str, loaded_registry: None) -> Iterator[object]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(**extra_env: str) -> subprocess.Popen[bytes]:
        env = dict(
            os.environ,
            **extra_env,
            GATEWAY_DATABASE_URL=database_url,
            GATEWAY_DELIVERY_POLL_SECONDS="0.05",
            GATEWAY_DELIVERY_LEASE_MARGIN_SECONDS="1",
            GATEWAY_RETRY_BASE_SECONDS="0.1",
            GATEWAY_DELIVERY_CONCURRENCY=str(WORKER_CONCURRENCY),
            GATEWAY_REGISTRY_REFRESH_SECONDS="0",
        )
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], cwd=REPO_ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def accept_many(async_url: str, service: str, count: int) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: accepted(post(async_url, async_send(service)))[0], range(count)))


def test_worker_killed_mid_delivery_loses_nothing(
    async_url: str, push: dict[str, PushRecipientEmulator], start_worker, idle_statistics: None  # noqa: ANN001, F811
) -> None:
    recipient = push["slow"]
    recipient.behaviour = RecipientBehaviour(delay_seconds=1.0)
    ids = accept_many(async_url, "AsyncSlow", 20)
    worker = start_worker()
    wait_for(lambda: recipient.attempts >= 4, seconds=30)  # deliveries are in flight now
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    recipient.behaviour = RecipientBehaviour()
    start_worker()
    wait_for(lambda: set(ids) <= {r.message_id for r in recipient.messages()}, seconds=60)
    for message_id in ids:
        wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED", seconds=30)
    # Only what the killed worker had in flight (its leases) may have gone out twice.
    repeated = sum(n - 1 for n in Counter(r.message_id for r in recipient.messages()).values())
    assert repeated <= WORKER_CONCURRENCY


def test_two_workers_drain_the_queue_once_each_message(
    async_url: str, push: dict[str, PushRecipientEmulator], start_worker, database_url: str,  # noqa: ANN001
    idle_statistics: None,  # noqa: F811
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several worker processes sharing one queue is the PostgreSQL set-up (SKIP LOCKED)")
    recipient = push["bulk"]
    # 20 ms a message: one worker holding the whole queue would take 5 s, past the point's 4 s leases.
    recipient.behaviour = RecipientBehaviour(delay_seconds=0.02)
    ids = accept_many(async_url, "AsyncBulk", 2000)
    start_worker()
    start_worker()
    wait_for(lambda: set(ids) <= {r.message_id for r in recipient.messages()}, seconds=180, interval=0.5)
    delivered = Counter(r.message_id for r in recipient.messages())
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1, f"delivered twice: {[m for m, n in delivered.items() if n > 1][:5]}"


def test_half_open_probe_brings_a_switched_off_point_back(
    async_url: str, push: dict[str, PushRecipientEmulator], start_worker, engine  # noqa: ANN001
) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from gateway.store.models import DeliveryPointState
    from journals.models import IncidentJournalEntry

    recipient = push["breaker"]  # delivery point 14: retryCount 0, maxErrors 3 within 1 s
    recipient.behaviour = RecipientBehaviour(fail_next=3)
    start_worker(GATEWAY_BREAKER_PROBE_SECONDS="1")
    failing = accept_many(async_url, "AsyncBreaker", 3)
    for message_id in failing:
        wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "NOT_DELIVERED")
    queued, _ = accepted(post(async_url, async_send("AsyncBreaker")))
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") in ("DELIVERY_STOPPED", "DELIVERED"))
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") == "DELIVERED", seconds=20)
    with Session(engine) as session:
        assert not session.get(DeliveryPointState, 14).switched_off
        incident = session.scalars(
            select(IncidentJournalEntry).where(IncidentJournalEntry.delivery_point_id == 14).order_by(IncidentJournalEntry.id.desc())
        ).first()
    assert incident.closed_at is not None and "probe" in incident.measures_taken
