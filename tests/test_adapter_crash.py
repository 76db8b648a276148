"""A delivery worker killed while a backend is creating leaves one object at the backend (issue 11, item 12).

A real worker process hands an EcertAsync REQUEST to the ecert adapter; the ИС ЭС emulator holds the create call
and the worker is SIGKILLed meanwhile. The backend makes the task all the same. When the dead worker's lease
expires, a second worker claims the task and calls the adapter again with the same stored message: the backend
must name the task it already made, and the initiator must get exactly one RESPONSE, for that task.
"""
from __future__ import annotations

import os
import random
import signal
from typing import Any

from lxml import etree

from emulators.ecert import EcertEmulator, ReceivedRequest
from tests.test_adapters_e2e import only_response
from tests.test_async_channel import accepted
from tests.test_async_workers import start_worker  # noqa: F401 - the worker-process fixture
from tests.test_e2e_ecert import BASE, LUHN_VALID_CARD, create_request, text
from tests.wire import async_send, post, wait_for

HOLD_SECONDS = 2.0  # the backend holds the create call this long; the first worker dies meanwhile


def async_url(gateway_url: str) -> str:
    return f"{gateway_url}/bip-async/"


def creates_of(emulator: EcertEmulator, phone: str) -> list[ReceivedRequest]:
    """The /ec-create requests for our one message (told apart from others by its phone number)."""
    return [r for r in emulator.received if r.path == f"{BASE}/ec-create" and phone.encode() in r.body]


def test_a_worker_killed_while_ecert_creates_leaves_one_task_and_one_response(
    gateway_url: str, backends: dict[str, Any], start_worker: Any  # noqa: F811
) -> None:
    emulator: EcertEmulator = backends["ecert"]
    emulator.set_switches(delay_seconds=HOLD_SECONDS, polls_until_done=1)
    phone = f"9{random.randrange(10**9):09d}"
    data = create_request(card=LUHN_VALID_CARD).replace("<phoneNumber>9104560011</phoneNumber>", f"<phoneNumber>{phone}</phoneNumber>")
    assert phone in data
    url = async_url(gateway_url)
    request_id, correlation_id = accepted(post(url, async_send("EcertAsync", data=data)))

    first = start_worker()
    wait_for(lambda: creates_of(emulator, phone), seconds=30)  # the create is at the backend, held
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    emulator.set_switches(delay_seconds=0)
    start_worker()  # claims the task once the dead worker's lease (asyncCallTimeout 5 s + margin 1 s) expires
    wait_for(lambda: len(creates_of(emulator, phone)) == 2, seconds=60)  # the second worker asked the backend again

    response = only_response(url, "EcertAsync", request_id, correlation_id)
    creates = creates_of(emulator, phone)
    assert len(creates) == 2
    request_ids = {r.headers["x-request-id"] for r in creates}
    tasks = [task for task in emulator.registry.tasks.values() if task.request_id in request_ids]
    assert len(tasks) == 1, f"the backend made {len(tasks)} tasks for one message"
    assert len(request_ids) == 1 and creates[0].body == creates[1].body
    answer = response.find("messageData/data")[0]
    assert answer.tag == "{urn:gateway:adapters:ecert}CreateCertificatesResponse", etree.tostring(answer)[:300]
    assert text(answer, "taskId") == tasks[0].id
    assert text(answer, "taskStatus") == "taskIsExecuted"
