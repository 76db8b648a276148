"""``gateway serve``: uvicorn worker processes, where a slow provider's call holds a coroutine, not the gateway."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3

from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
from tests.conftest import REPO_ROOT, free_port
from tests.wire import Answer, post, sync_request


@pytest.fixture(scope="module")
def served_gateway(database_url: str, loaded_registry: None) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_PORT=str(port), GATEWAY_WORKERS="1",
               GATEWAY_THREADS="4", GATEWAY_REGISTRY_REFRESH_SECONDS="0")
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + 30
    while True:
        try:
            if http.request("GET", f"{url}/health", timeout=1.0).status == 200:
                break
        except urllib3.exceptions.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gateway serve did not start: {process.stdout.read().decode()[-2000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    output, _ = process.communicate(timeout=30)
    assert b"Uvicorn running on" in output


def test_serve_answers_and_publishes_its_wsdl(served_gateway: str, provider: SyncProviderEmulator) -> None:
    wsdl = urllib3.request("GET", f"{served_gateway}/bip-sync/?wsdl")
    assert wsdl.status == 200
    assert f'location="{served_gateway}/bip-sync/"'.encode() in wsdl.data
    answer = post(f"{served_gateway}/bip-sync/", sync_request())
    assert answer.status == 200


def test_a_slow_provider_does_not_hold_up_the_next_call(served_gateway: str, provider: SyncProviderEmulator) -> None:
    provider.behaviour = ProviderBehaviour(delay_seconds=3.0)
    slow: list[Answer] = []
    thread = threading.Thread(target=lambda: slow.append(post(f"{served_gateway}/bip-sync/", sync_request())))
    thread.start()
    deadline = time.monotonic() + 10
    while not provider.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert provider.received, "the slow request never reached the provider"
    provider.behaviour = ProviderBehaviour()
    fast = post(f"{served_gateway}/bip-sync/", sync_request())
    assert fast.status == 200
    assert thread.is_alive(), "the fast answer came back only after the slow one"
    thread.join(timeout=15)
    assert slow and slow[0].status == 200
