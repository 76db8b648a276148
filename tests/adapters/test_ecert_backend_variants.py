"""ecert adapter against canned ИС ЭС answers the emulator does not give: the spec's own TaskStatus example,
the variants clients must accept (§13.2) and answers that break the protocol."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from lxml import etree

from emulators.ecert import DEFAULT_JWS_KEY, EcertEmulator
from gateway.serving import BackgroundServer
from gateway.adapters.ecert import create
from gateway.adapters.payload import PayloadSchema
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread

NS = "urn:gateway:adapters:ecert"
FIXTURES = Path(__file__).parent / "ecert_fixtures"
SIGNER = EcertEmulator()
TASK = "5b0f2a8e-3c1d-4e2f-9a7b-1c2d3e4f5a6b"
REFERENCE = {"task_id": TASK, "task_type": "ec_create", "request_id": "970ebfe5-9cae-4e19-b7e7-602811924578",
             "acknowledgement": "REQUEST_IS_QUEUED", "status": "requestIsQueued"}


class Canned:
    """Answers every request with ``status``, ``body`` and ``content_type``, signed unless told otherwise."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes, str, bool]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status, body, content_type, signed = self.answers.pop(0)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if signed:
            headers.append(("x-jws-signature", SIGNER.sign(rfc8785.dumps(json.loads(body)))))
        start_response(f"{status} X", headers)
        return [body]


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Canned, BackgroundServer]]:
    canned = Canned()
    with BackgroundServer(canned) as server:
        yield canned, server


@pytest.fixture()
def canned(backend: tuple[Canned, BackgroundServer]) -> Canned:
    backend[0].answers.clear()
    return backend[0]


@pytest.fixture()
def adapter(backend: tuple[Canned, BackgroundServer], loop_thread: LoopThread) -> Iterator[BlockingAdapter]:
    http = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    settings = {"baseUrl": backend[1].url + "/api/1.2.1-Y/ec", "apiKey": "k", "jwsKey": DEFAULT_JWS_KEY.decode()}
    yield BlockingAdapter(create(settings, http), loop_thread)
    # The client's connection pools belong to the loop its calls ran on.
    loop_thread.run(http.close())


def json_answer(canned: Canned, status: int, body: str | bytes, signed: bool = True) -> None:
    canned.answers.append((status, body.encode() if isinstance(body, str) else body, "application/json; charset=utf-8", signed))


def status_request() -> etree._Element:
    request = etree.Element(f"{{{NS}}}GetTasksStatusRequest", nsmap={None: NS})
    for name, value in (("requestType", "ec_create"), ("requestType", "ec_block"), ("taskQuantity", "10")):
        etree.SubElement(request, f"{{{NS}}}{name}").text = value
    return request


def test_the_spec_task_status_example_is_read(adapter: BlockingAdapter, canned: Canned) -> None:
    json_answer(canned, 201, (FIXTURES / "tasks_status_response.json").read_bytes())
    answer = adapter.handle(status_request(), time.monotonic() + 5)
    PayloadSchema.of("ecert").check_answer(answer.data)
    tasks = [[child.text for child in task] for task in answer.data]
    assert tasks == [[TASK, "ec_create", "taskIsExecuted"], ["7c1e3b9f-4d2e-4f30-8b8c-2d3e4f5a6b7c", "ec_block", "underProcessing"]]


def test_a_bare_acknowledgement_from_tasks_status_is_accepted(adapter: BlockingAdapter, canned: Canned) -> None:
    canned.answers.append((201, b"REQUEST_IS_ACCEPTED", "text/plain", False))
    answer = adapter.handle(status_request(), time.monotonic() + 5)
    assert answer.data.findtext(f"{{{NS}}}acknowledgement") == "REQUEST_IS_ACCEPTED"
    # While polling it means "nothing known yet": still pending, last known status kept.
    canned.answers.append((201, b"REQUEST_IS_QUEUED", "text/plain", False))
    polled = adapter.poll(REFERENCE, 1, time.monotonic() + 5)
    assert polled.pending is not None and polled.status_code == "requestIsQueued"


def test_cyrillic_error_codes_are_normalised(adapter: BlockingAdapter, canned: Canned) -> None:
    json_answer(canned, 400, '{"Errors":[{"code":"ЕС00203","msg":"Неверный тип запроса"},{"code":"EC00201"}]}')
    with pytest.raises(GatewayError) as caught:
        adapter.handle(status_request(), time.monotonic() + 5)
    assert caught.value.error is ErrorCode.PROVIDER_FAULT
    assert caught.value.sub_error.code == "EC00203" and caught.value.sub_error.message == "Неверный тип запроса"
    assert "EC00201: Request does not match the data schema" in caught.value.data


@pytest.mark.parametrize(
    ("status", "body", "signed"),
    [
        (400, '{"Errors":[{"code":"EC99999"}]}', True),  # not a protocol code
        (400, '{"Errors":[]}', True),
        (201, '[{"Id":"%s","Status":"sleeping","Task_Type":"ec_create"}]' % TASK, True),
        (201, '{"Id":"x"}', True),
        (201, (FIXTURES / "tasks_status_response.json").read_text(), False),  # unsigned
        (418, "teapot", False),
    ],
)
def test_protocol_breaches_are_invalid_responses(adapter: BlockingAdapter, canned: Canned, status: int, body: str, signed: bool) -> None:
    if body.startswith(("[", "{")):
        json_answer(canned, status, body, signed)
    else:
        canned.answers.append((status, body.encode(), "text/plain", False))
    with pytest.raises(GatewayError) as caught:
        adapter.handle(status_request(), time.monotonic() + 5)
    assert caught.value.error is ErrorCode.PROVIDER_RESPONSE_INVALID


def test_results_with_both_group_spellings_and_a_wrong_record(adapter: BlockingAdapter, canned: Canned) -> None:
    record = {"recordId": 1, "protocol": {"receivingTime": "2024-03-01T10:00:00+03:00", "processingTime": "2024-03-01T10:00:05+03:00",
                                          "isProcessedSuccessfully": False,
                                          "processingProtocol": [{"MessageType": 2, "MessageMetadata": "внимание"}]}}
    results = {"ec_tasks_results": {"ec_create_tasks_results": [{"Id": TASK, "Task_Type": "ec_create", "eCertificatesCreateResponse": [record]}]}}
    json_answer(canned, 201, '[{"Id":"%s","Status":"taskIsExecuted","Task_Type":"ec_create"}]' % TASK)
    json_answer(canned, 201, rfc8785.dumps(results))
    final = adapter.poll(REFERENCE, 3, time.monotonic() + 5)
    assert final.pending is None and final.status_code == "RECORDS_FAILED"
    assert final.data.findtext(f"{{{NS}}}record/{{{NS}}}message/{{{NS}}}type") == "warning"
    record["protocol"]["isProcessedSuccessfully"] = "no"
    json_answer(canned, 201, '[{"Id":"%s","Status":"taskIsExecuted","Task_Type":"ec_create"}]' % TASK)
    json_answer(canned, 201, rfc8785.dumps(results))
    with pytest.raises(GatewayError) as caught:
        adapter.poll(REFERENCE, 4, time.monotonic() + 5)
    assert caught.value.error is ErrorCode.PROVIDER_RESPONSE_INVALID


def test_an_acknowledgement_without_a_task_id_cannot_be_followed(adapter: BlockingAdapter, canned: Canned) -> None:
    canned.answers.append((201, b"REQUEST_IS_QUEUED", "text/plain", False))
    block = etree.fromstring(
        f'<BlockCertificatesRequest xmlns="{NS}"><record><recordId>1</recordId>'
        "<factAssignmentUuid>0f8fad5b-d9cb-469f-a165-70867728950e</factAssignmentUuid>"
        "<certificateNumber>2021080713257902301000001</certificateNumber><blockReason>EСВR0001</blockReason></record>"
        "</BlockCertificatesRequest>"
    )
    with pytest.raises(GatewayError) as caught:
        adapter.handle(block, time.monotonic() + 5)
    assert caught.value.error is ErrorCode.PROVIDER_RESPONSE_INVALID and "x-response-id" in caught.value.data
