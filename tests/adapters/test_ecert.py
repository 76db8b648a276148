"""ecert adapter against the ИС ЭС emulator over real HTTP on loopback: the task pattern of create/edit/block,
the direct operations, signatures both ways and the error mapping."""
from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import urllib3
from lxml import etree

from emulators.ecert import DEFAULT_API_KEY, DEFAULT_JWS_KEY, EcertEmulator, make_emulator
from gateway.serving import BackgroundServer
from gateway.adapters.base import AdapterAnswer
from gateway.adapters.ecert import adapter as ecert_adapter_module
from gateway.adapters.ecert import create
from gateway.adapters.payload import PayloadSchema
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from tests.adapters.looped import BlockingAdapter, LoopThread

NS = "urn:gateway:adapters:ecert"
FIXTURES = Path(__file__).parent / "ecert_fixtures"
BASE = "/api/1.2.1-Y/ec"
ACTIVE = ("2021080713257902301000001", "0f8fad5b-d9cb-469f-a165-70867728950e")
BLOCKED = ("2021080713257902301000002", "7c9e6679-7425-40de-944b-e07fc1f90ae7")
AWAITING = ("2021080713257902301000003", "16fd2706-8baf-433b-82eb-8c7fada847da")
SPENT = ("2021080713257902301000004", "886313e1-3b8a-4372-9b90-0c9aee199e5d")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SCHEMA = PayloadSchema.of("ecert")


class _Socket:
    """One loopback server for the module, answering with each test's fresh emulator."""

    def __init__(self) -> None:
        self.emulator = make_emulator()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.emulator(environ, start_response)


@pytest.fixture(scope="module")
def socket_server() -> Iterator[tuple[_Socket, BackgroundServer]]:
    socket = _Socket()
    with BackgroundServer(socket) as running:
        yield socket, running


@pytest.fixture()
def emulator(socket_server: tuple[_Socket, BackgroundServer]) -> EcertEmulator:
    socket_server[0].emulator = make_emulator()
    return socket_server[0].emulator


@pytest.fixture()
def server(socket_server: tuple[_Socket, BackgroundServer], emulator: EcertEmulator) -> BackgroundServer:
    return socket_server[1]


@pytest.fixture()
def http(loop_thread: LoopThread) -> Iterator[AsyncHttpClient]:
    client = AsyncHttpClient(connect_timeout=2, max_response_bytes=1_000_000)
    yield client
    # The client's connection pools belong to the loop its calls ran on.
    loop_thread.run(client.close())


def make_adapter(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread, **options: str) -> BlockingAdapter:
    """An ecert adapter on the emulator at ``server``, called from the test and run on ``loop_thread``."""
    settings = {"baseUrl": server.url + BASE, "apiKey": DEFAULT_API_KEY, "jwsKey": DEFAULT_JWS_KEY.decode(), "pollSeconds": "1"}
    return BlockingAdapter(create({**settings, **options}, http), loop_thread)


@pytest.fixture()
def adapter(server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread) -> BlockingAdapter:
    return make_adapter(server, http, loop_thread)


# ------------------------------------------------------------------------------------------------ helpers
def xml(tag: str, *children: Any, **fields: Any) -> etree._Element:
    """``<tag>`` in the payload namespace with ``children`` elements then text ``fields`` in order."""
    node = etree.Element(f"{{{NS}}}{tag}", nsmap={None: NS})
    for child in children:
        node.append(child)
    for name, value in fields.items():
        etree.SubElement(node, f"{{{NS}}}{name}").text = str(value)
    return node


def sub(parent: etree._Element, tag: str, **fields: Any) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    for name, value in fields.items():
        etree.SubElement(node, f"{{{NS}}}{name}").text = str(value)
    return node


def find(node: etree._Element, path: str) -> str | None:
    return node.findtext("/".join(f"{{{NS}}}{part}" for part in path.split("/")))


def spec_create_request(card: str = "2200123412341234", end: str = "2024-12-31T23:59:59+03:00") -> etree._Element:
    """The spec's §8.1 example create request, as payload XML (amount 1500000 kopecks = 15000.00 roubles)."""
    request = xml("CreateCertificatesRequest")
    record = sub(request, "record", recordId=1, pid="12345678901", phoneNumber="9104560011")
    sub(record, "organization", rid="AB123456", fullname="…", account="12345678901", INN="1234567890", KPP="123456789")
    for name, value in {
        "mspCode": "0001", "budgetaryClassificationCode": "12345678901234567890",
        "startDate": "2024-01-01T00:00:00+03:00", "endDate": end, "nationalPaymentInstrument": card,
        "certificateType": "ЕСТР0001", "program": "ЕСРРАССТ",
    }.items():
        etree.SubElement(record, f"{{{NS}}}{name}").text = value
    goods = sub(record, "goodsWorksServices")
    sub(goods, "item", code="32.50.22.129-00000001", name="…", maxAmount="15000.00", quantity=1)
    return request


def block_request(*records: tuple[str, str, str]) -> etree._Element:
    request = xml("BlockCertificatesRequest")
    for index, (number, fact, reason) in enumerate(records, start=1):
        sub(request, "record", recordId=index, factAssignmentUuid=fact, certificateNumber=number, blockReason=reason)
    return request


def edit_request(number: str, fact: str, **changes: str) -> etree._Element:
    request = xml("EditCertificatesRequest")
    sub(request, "record", recordId=1, factAssignmentUuid=fact, certificateNumber=number, **changes)
    return request


def statement(adapter: BlockingAdapter, number: str) -> etree._Element:
    answer = adapter.handle(xml("GetDetailedStatementRequest", certificateNumber=number), time.monotonic() + 5)
    SCHEMA.check_answer(answer.data)
    return answer.data


def follow(adapter: BlockingAdapter, answer: AdapterAnswer, limit: int = 10) -> tuple[AdapterAnswer, list[float]]:
    """Poll until final (at most ``limit`` times, without sleeping: the emulator counts polls, not time)."""
    delays = []
    for attempt in range(1, limit + 1):
        if answer.pending is None:
            return answer, delays
        json.dumps(answer.pending.reference)  # must survive the database
        answer = adapter.poll(answer.pending.reference, attempt, time.monotonic() + 5)
        SCHEMA.check_answer(answer.data)
        if answer.pending is not None:
            delays.append(answer.pending.poll_after_seconds)
    assert answer.pending is None, "task did not finish"
    return answer, delays


def raw(server: BackgroundServer, emulator: EcertEmulator, method: str, path: str, value: Any = None,
        request_id: str | None = None, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
    """A hand-made signed request to the emulator."""
    payload = body if body is not None else (b"" if value is None else rfc8785.dumps(value))
    headers = {
        "x-api-key": DEFAULT_API_KEY, "x-request-id": request_id or str(uuid.uuid4()),
        "x-request-date": "2024-04-05T10:43:07+03:00", "x-jws-signature": emulator.sign(rfc8785.dumps(json.loads(payload)) if payload else b""),
        "Content-Type": "application/json; charset=utf-8",
    }
    return urllib3.request(method, server.url + path, body=payload or None, headers=headers, retries=False, timeout=5)


def fault_of(call: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value


# ------------------------------------------------------------------------------------------------ tasks
def test_create_sends_the_spec_example_signed_and_follows_the_task(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    answer = adapter.handle(spec_create_request(), time.monotonic() + 5)
    SCHEMA.check_answer(answer.data)

    sent = emulator.received[-1]
    assert sent.method == "POST" and sent.path == BASE + "/ec-create"
    expected = rfc8785.dumps(json.loads((FIXTURES / "create_request.json").read_text(encoding="utf-8")))
    assert sent.body == expected  # the canonical bytes themselves are the body, Cyrillic enums as written
    assert sent.headers["x-jws-signature"] == emulator.sign(expected)
    assert sent.headers["x-api-key"] == DEFAULT_API_KEY
    assert UUID4.match(sent.headers["x-request-id"])
    assert datetime.fromisoformat(sent.headers["x-request-date"]).tzinfo is not None

    task = emulator.registry.tasks[find(answer.data, "taskId")]
    assert answer.status_code == "REQUEST_IS_QUEUED" and answer.data.tag == f"{{{NS}}}CreateCertificatesResponse"
    assert find(answer.data, "requestId") == sent.headers["x-request-id"] == task.request_id
    assert find(answer.data, "taskStatus") == "requestIsQueued" and len(answer.data.findall(f"{{{NS}}}record")) == 0
    assert answer.pending is not None and answer.pending.poll_after_seconds == 1
    assert answer.pending.reference["task_id"] == task.id and answer.pending.reference["task_type"] == "ec_create"

    final, delays = follow(adapter, answer)
    assert delays == [2.0]  # polls_until_done=2: one pending poll, then final
    assert final.status_code == "OK" and final.pending is None
    assert find(final.data, "taskStatus") == "taskIsExecuted"
    assert [r.path for r in emulator.received[-2:]] == [BASE + "/ec-tasks-status", BASE + "/ec-tasks-results"]
    assert find(final.data, "record/processedSuccessfully") == "true"
    number = find(final.data, "record/certificate/certificateNumber")
    assert number and len(number) == 25
    # The spec's example card fails the Luhn check: activation suspended.
    assert find(final.data, "record/certificate/currentStatus/statusCode") == "ECSTPACT"
    assert find(final.data, "record/certificate/activationSuspensionReason") == "ECASCARD"
    assert find(final.data, "record/certificate/balances/balance/actualAmount") == "15000.00"
    assert find(final.data, "record/certificate/startDate") == "2024-01-01"

    assert find(statement(adapter, number), "certificate/factAssignmentUuid") == find(final.data, "record/factAssignmentUuid")


def test_record_level_failure_is_a_final_answer_with_the_rule(adapter: BlockingAdapter) -> None:
    answer = adapter.handle(spec_create_request(end="2023-12-31T00:00:00+03:00"), time.monotonic() + 5)
    final, _ = follow(adapter, answer)
    assert final.status_code == "RECORDS_FAILED"
    assert find(final.data, "record/processedSuccessfully") == "false"
    assert find(final.data, "record/message/type") == "error"
    assert find(final.data, "record/message/ruleCode") == "003"
    assert find(final.data, "record/certificate") is None


def test_block_then_statement_and_unknown_certificate(adapter: BlockingAdapter) -> None:
    unknown = ("2099010100000000000000001", "11111111-1111-4111-8111-111111111111", "EСВR0003")
    answer = adapter.handle(block_request((*ACTIVE, "EСВR0002"), unknown), time.monotonic() + 5)
    assert answer.data.tag == f"{{{NS}}}BlockCertificatesResponse"
    # Awaiting blocking at once.
    assert find(statement(adapter, ACTIVE[0]), "certificate/currentStatus/statusCode") == "ECSTPBLK"
    final, _ = follow(adapter, answer)
    assert final.status_code == "RECORDS_FAILED"
    records = final.data.findall(f"{{{NS}}}record")
    assert [find(r, "processedSuccessfully") for r in records] == ["true", "false"]
    assert find(records[0], "certificate/currentStatus/statusCode") == "ECSTBLKD"
    assert find(records[0], "certificate/currentStatus/statusReason") == "ECSR0002"  # EСВR0002 → ECSR0002
    assert find(records[1], "message/ruleCode") == "002"
    assert find(statement(adapter, ACTIVE[0]), "certificate/currentStatus/statusCode") == "ECSTBLKD"


def test_edit_reads_the_tasks_spelling_of_the_result_group(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    final, _ = follow(adapter, adapter.handle(edit_request(*ACTIVE, phoneNumber="9990001122"), time.monotonic() + 5))
    assert final.status_code == "OK" and final.data.tag == f"{{{NS}}}EditCertificatesResponse"
    assert emulator.registry.certificates[ACTIVE[0]].phone == "9990001122"
    assert json.loads(emulator.received[-2].body) == {"Request_Types": ["ec_edit"], "Task_Quantity": 100}


def test_backoff_grows_from_poll_seconds_and_is_capped(
    server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread, emulator: EcertEmulator
) -> None:
    emulator.switches.polls_until_done = 6
    adapter = make_adapter(server, http, loop_thread, pollSeconds="1", maxPollSeconds="5")
    answer = adapter.handle(block_request((*ACTIVE, "EСВR0001")), time.monotonic() + 5)
    final, delays = follow(adapter, answer)
    assert delays == [2.0, 4.0, 5.0, 5.0, 5.0]
    assert find(final.data, "taskStatus") == "taskIsExecuted" and final.status_code == "OK"


def test_task_progress_statuses_are_reported_while_pending(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    emulator.set_switches(polls_until_done=4, acknowledgement="REQUEST_IS_ACCEPTED")
    answer = adapter.handle(block_request((*ACTIVE, "EСВR0001")), time.monotonic() + 5)
    assert answer.status_code == "REQUEST_IS_ACCEPTED" and find(answer.data, "taskStatus") == "requestIsAcceptedBySmev"
    seen = []
    for attempt in range(1, 4):
        answer = adapter.poll(answer.pending.reference, attempt, time.monotonic() + 5)
        seen.append(answer.status_code)
    assert seen == ["requestIsAcceptedBySmev", "underProcessing", "responseIsAcceptedBySmev"]
    assert answer.pending is not None


@pytest.mark.parametrize("status", ["cancelled", "requestIsRejectedBySmev", "responseIsRejectedBySmev"])
def test_failed_task_is_final_and_block_is_undone(adapter: BlockingAdapter, emulator: EcertEmulator, status: str) -> None:
    emulator.switches.final_status = status
    final, _ = follow(adapter, adapter.handle(block_request((*ACTIVE, "EСВR0001")), time.monotonic() + 5))
    assert final.status_code == status and find(final.data, "taskStatus") == status
    assert final.data.find(f"{{{NS}}}record") is None
    assert find(statement(adapter, ACTIVE[0]), "certificate/currentStatus/statusCode") == "ECSTACTV"


# ------------------------------------------------------------------------------------------------ direct
def test_detailed_statement_of_seed_certificates(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    data = statement(adapter, ACTIVE[0])
    sent = emulator.received[-1]
    assert sent.method == "GET" and sent.query == f"cn={ACTIVE[0]}" and sent.body == b""
    assert sent.headers["x-jws-signature"] == emulator.sign(b"")  # bodiless GET signs the empty payload
    assert find(data, "certificate/program") == "ЕСРРАССТ"
    assert find(data, "certificate/usageTransactions/transaction/totalAmount") == "14500.00"
    assert find(data, "certificate/usageTransactions/transaction/location/latitude") == "55.7558"
    assert find(data, "certificate/balances/balance/actualAmount") == "15500.00"
    spent = statement(adapter, SPENT[0])
    # The backend omits zero balances (minimum 1); the answer says 0.
    assert find(spent, "certificate/certificateActualAmount") == "0.00"
    assert find(spent, "certificate/certificateActualQuantity") == "0"
    assert find(spent, "certificate/usageStatus") == "ECUSFULL"


def test_tasks_status_and_results_as_direct_operations(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    emulator.switches.polls_until_done = 1
    created = adapter.handle(spec_create_request(card="2200123412341236"), time.monotonic() + 5)
    edited = adapter.handle(edit_request(*ACTIVE, pid="99988877766"), time.monotonic() + 5)
    status = adapter.handle(xml("GetTasksStatusRequest", requestType="ec_create", taskQuantity=5), time.monotonic() + 5)
    tasks = status.data.findall(f"{{{NS}}}task")
    assert [(find(t, "taskId"), find(t, "taskStatus")) for t in tasks] == [(find(created.data, "taskId"), "taskIsExecuted")]
    request = xml("GetTasksResultsRequest")
    for answer in (created, edited):
        etree.SubElement(request, f"{{{NS}}}taskId").text = find(answer.data, "taskId")
    # The edit task was never listed, so it is not executed: only the create result comes back.
    results = adapter.handle(request, time.monotonic() + 5)
    SCHEMA.check_answer(results.data)
    found = results.data.findall(f"{{{NS}}}taskResult")
    assert [find(r, "taskType") for r in found] == ["ec_create"]
    assert find(found[0], "record/certificate/currentStatus/statusCode") == "ECSTACTV"  # a Luhn-valid card


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (lambda: edit_request(*BLOCKED, phoneNumber="9990001122"), "EC00219"),
        (lambda: block_request((*AWAITING, "EСВR0001")), "EC00220"),
        (lambda: xml("GetDetailedStatementRequest", certificateNumber="2099010100000000000009999"), "EC00216"),
    ],
)
def test_business_refusals_are_provider_faults(adapter: BlockingAdapter, request_: Any, code: str) -> None:
    error = fault_of(lambda: adapter.handle(request_(), time.monotonic() + 5))
    assert error.error is ErrorCode.PROVIDER_FAULT
    assert error.sub_error is not None and error.sub_error.code == code


@pytest.mark.parametrize("code", ["EC00200", "EC00201", "EC00202", "EC00203", "EC00216", "EC00219", "EC00220", "EC00272"])
def test_every_error_code_maps_to_its_sub_error(adapter: BlockingAdapter, emulator: EcertEmulator, code: str) -> None:
    emulator.switches.force_error = code
    error = fault_of(lambda: adapter.handle(xml("GetTasksStatusRequest", requestType="ec_block", taskQuantity=1), time.monotonic() + 5))
    assert error.error is ErrorCode.PROVIDER_FAULT and error.sub_error.code == code
    assert error.sub_error.message  # the emulator's Russian text, passed on


def test_response_signature_forged_or_missing_is_refused(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    emulator.switches.forge_response_signature = True
    assert fault_of(lambda: statement(adapter, ACTIVE[0])).error is ErrorCode.PROVIDER_RESPONSE_INVALID
    # Not even an error body is believed without its signature.
    error = fault_of(lambda: statement(adapter, "2099010100000000000009999"))
    assert error.error is ErrorCode.PROVIDER_RESPONSE_INVALID and error.sub_error is None
    emulator.set_switches(forge_response_signature=False, omit_response_signature=True)
    assert fault_of(lambda: statement(adapter, ACTIVE[0])).error is ErrorCode.PROVIDER_RESPONSE_INVALID
    emulator.switches.omit_response_signature = False
    assert find(statement(adapter, ACTIVE[0]), "certificate/certificateNumber") == ACTIVE[0]


def test_a_large_answer_is_verified_off_the_loop_all_the_same(
    adapter: BlockingAdapter, emulator: EcertEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers over ``INLINE_VERIFY_BYTES`` are verified on a thread: a good signature passes, a forged one not."""
    monkeypatch.setattr(ecert_adapter_module, "INLINE_VERIFY_BYTES", 0)
    assert find(statement(adapter, ACTIVE[0]), "certificate/certificateNumber") == ACTIVE[0]
    emulator.switches.forge_response_signature = True
    assert fault_of(lambda: statement(adapter, ACTIVE[0])).error is ErrorCode.PROVIDER_RESPONSE_INVALID


def test_forged_signature_on_poll_is_refused(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    answer = adapter.handle(block_request((*ACTIVE, "EСВR0001")), time.monotonic() + 5)
    emulator.switches.forge_response_signature = True
    error = fault_of(lambda: adapter.poll(answer.pending.reference, 1, time.monotonic() + 5))
    assert error.error is ErrorCode.PROVIDER_RESPONSE_INVALID


def test_wrong_credentials_are_http_refusals(
    server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread, emulator: EcertEmulator
) -> None:
    wrong_key = make_adapter(server, http, loop_thread, jwsKey="x" * 64)
    error = fault_of(lambda: statement(wrong_key, ACTIVE[0]))
    assert error.error is ErrorCode.PROVIDER_FAULT and error.sub_error.code == "HTTP401"
    wrong_api_key = make_adapter(server, http, loop_thread, apiKey="someone-else")
    error = fault_of(lambda: statement(wrong_api_key, ACTIVE[0]))
    assert error.error is ErrorCode.PROVIDER_FAULT and error.sub_error.code == "HTTP401"
    assert len(emulator.received) == 2


def test_down_slow_and_unreachable(
    server: BackgroundServer, http: AsyncHttpClient, loop_thread: LoopThread, adapter: BlockingAdapter, emulator: EcertEmulator
) -> None:
    emulator.switches.down = "503"
    assert fault_of(lambda: statement(adapter, ACTIVE[0])).error is ErrorCode.PROVIDER_UNREACHABLE
    emulator.switches.down = "drop"
    assert fault_of(lambda: statement(adapter, ACTIVE[0])).error is ErrorCode.PROVIDER_UNREACHABLE
    emulator.set_switches(down=None, delay_seconds=0.6)
    request = xml("GetDetailedStatementRequest", certificateNumber=ACTIVE[0])
    assert fault_of(lambda: adapter.handle(request, time.monotonic() + 0.3)).error is ErrorCode.PROVIDER_TIMEOUT
    short = make_adapter(server, http, loop_thread, timeoutSeconds="0.3")
    assert fault_of(lambda: short.handle(request, time.monotonic() + 5)).error is ErrorCode.PROVIDER_TIMEOUT
    emulator.switches.delay_seconds = 0
    nowhere_settings = {"baseUrl": "http://127.0.0.1:9/api/1.2.1-Y/ec", "apiKey": "k", "jwsKey": "k" * 64}
    nowhere = BlockingAdapter(create(nowhere_settings, http), loop_thread)
    assert fault_of(lambda: nowhere.handle(request, time.monotonic() + 2)).error is ErrorCode.PROVIDER_UNREACHABLE


def test_invalid_payloads_are_refused_before_anything_is_sent(adapter: BlockingAdapter, emulator: EcertEmulator) -> None:
    bad_card = spec_create_request(card="1234")
    assert fault_of(lambda: adapter.handle(bad_card, time.monotonic() + 5)).error is ErrorCode.MALFORMED_MESSAGE
    # ЕСТР0001 must not carry a certificate amount (§12).
    with_amount = spec_create_request()
    record = with_amount[0]
    amount = etree.Element(f"{{{NS}}}certificateAmount")
    amount.text = "100.00"
    record.find(f"{{{NS}}}program").addnext(amount)
    error = fault_of(lambda: adapter.handle(with_amount, time.monotonic() + 5))
    assert error.error is ErrorCode.MALFORMED_MESSAGE and "certificateAmount" in error.data
    other = etree.fromstring('<GetDetailedStatementRequest xmlns="urn:other"><certificateNumber>1</certificateNumber></GetDetailedStatementRequest>')
    assert fault_of(lambda: adapter.handle(other, time.monotonic() + 5)).error is ErrorCode.MALFORMED_MESSAGE
    assert emulator.received == []


def test_poll_with_a_broken_reference_is_malformed(adapter: BlockingAdapter) -> None:
    assert fault_of(lambda: adapter.poll({"task_id": "x"}, 1, time.monotonic() + 5)).error is ErrorCode.MALFORMED_MESSAGE


# ------------------------------------------------------------------------------------------------ emulator
def test_emulator_idempotency_by_request_id(server: BackgroundServer, emulator: EcertEmulator) -> None:
    body = [{"recordId": 1, "factAssignmentUuid": ACTIVE[1], "certificateNumber": ACTIVE[0], "blockReason": "EСВR0001"}]
    request_id = str(uuid.uuid4())
    first = raw(server, emulator, "POST", BASE + "/ec-block", body, request_id)
    again = raw(server, emulator, "POST", BASE + "/ec-block", body, request_id)
    assert first.status == again.status == 201 and first.data == b"REQUEST_IS_QUEUED"
    assert first.headers["x-response-id"] == again.headers["x-response-id"]
    assert first.headers["x-correlation-id"] == request_id and "x-jws-signature" not in first.headers
    assert len(emulator.registry.tasks) == 1
    body[0]["blockReason"] = "EСВR0002"
    other = raw(server, emulator, "POST", BASE + "/ec-block", body, request_id)
    assert other.status == 400 and json.loads(other.data)["Errors"][0]["code"] == "EC00201"


def test_emulator_checks_schema_signature_path_and_version(server: BackgroundServer, emulator: EcertEmulator) -> None:
    bad = [{"recordId": 0, "factAssignmentUuid": ACTIVE[1].upper(), "certificateNumber": ACTIVE[0], "blockReason": "ECBR0001", "x": 1}]
    answer = raw(server, emulator, "POST", BASE + "/ec-block", bad)
    errors = json.loads(answer.data)["Errors"]
    assert answer.status == 400 and len(errors) == 4 and {e["code"] for e in errors} == {"EC00201"}
    assert answer.headers["x-jws-signature"] == emulator.sign(rfc8785.dumps(json.loads(answer.data)))
    answer = raw(server, emulator, "POST", "/api/1.1.0/ec/ec-block", bad)
    assert json.loads(answer.data)["Errors"][0]["code"] == "EC00202"
    answer = raw(server, emulator, "POST", BASE + "/ec-status", bad)
    assert json.loads(answer.data)["Errors"][0]["code"] == "EC00203"
    answer = raw(server, emulator, "POST", BASE + "/ec-tasks-status", {"Request_Types": ["ec_undef"], "Task_Quantity": 1})
    assert json.loads(answer.data)["Errors"][0]["code"] == "EC00203"
    answer = raw(server, emulator, "POST", BASE + "/ec-tasks-results", {"eCertificateRequest_TaskResult": [{"taskId": str(uuid.uuid4())}]})
    assert answer.status == 400 and json.loads(answer.data)["Errors"][0]["code"] == "EC00201"
    unsigned = urllib3.request("POST", server.url + BASE + "/ec-tasks-status", body=b'{"Request_Types":["ec_create"],"Task_Quantity":1}',
                               headers={"x-api-key": DEFAULT_API_KEY, "x-request-id": str(uuid.uuid4()), "x-request-date": "2024-04-05T10:43:07+00:00"}, retries=False)
    assert unsigned.status == 401 and json.loads(unsigned.data)["Errors"][0]["code"] == "EC00201"
    emulator.switches.require_signature = False
    assert urllib3.request("POST", server.url + BASE + "/ec-tasks-status", body=b'{"Request_Types":["ec_create"],"Task_Quantity":1}',
                           headers={"x-api-key": DEFAULT_API_KEY, "x-request-id": str(uuid.uuid4()), "x-request-date": "2024-04-05T10:43:07+00:00"}, retries=False).status == 201
    no_id = urllib3.request("GET", server.url + BASE + f"/ec-detailed-statement?cn={ACTIVE[0]}", headers={"x-api-key": DEFAULT_API_KEY}, retries=False)
    assert no_id.status == 400 and json.loads(no_id.data)["Errors"][0]["code"] == "EC00201"


def test_emulator_routes_the_cyrillic_base_path(server: BackgroundServer, emulator: EcertEmulator) -> None:
    answer = raw(server, emulator, "GET", "/api/1.2.1-%D0%A3/%D0%B5%D1%81/ec-detailed-statement?cn=" + ACTIVE[0])
    assert answer.status == 200 and json.loads(answer.data)["certificateNumber"] == ACTIVE[0]
    body = [{"recordId": 1, "factAssignmentUuid": ACTIVE[1], "certificateNumber": ACTIVE[0], "blockReason": "EСВR0001"}]
    assert raw(server, emulator, "POST", "/api/1.2.1-Y/ec/%D0%B5%D1%81-block", body).status == 201


def test_switches_over_http(server: BackgroundServer, emulator: EcertEmulator) -> None:
    url = server.url + "/_emulator/switches"
    changed = urllib3.request("POST", url, body=json.dumps({"polls_until_done": 3, "down": "503"}).encode(), retries=False)
    assert changed.status == 200 and json.loads(changed.data)["polls_until_done"] == 3
    assert emulator.switches.down == "503"
    assert json.loads(urllib3.request("GET", url, retries=False).data)["down"] == "503"
    refused = urllib3.request("POST", url, body=b'{"down": "sometimes"}', retries=False)
    assert refused.status == 400 and emulator.switches.down == "503"
    assert urllib3.request("POST", url, body=b'{"colour": 1}', retries=False).status == 400
    with pytest.raises(ValueError):
        emulator.switches.polls_until_done = 0
