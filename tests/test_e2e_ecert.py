"""The ecert adapter end to end: SOAP in at the gateway, the ecert adapter, the ИС ЭС emulator over HTTP, SOAP out.

Every operation on the synchronous service ``Ecert`` (create, edit, block, detailed statement, task status, task
results), the asynchronous service ``EcertAsync`` (a task polled until final arrives at ``pep`` as exactly one
RESPONSE), signatures both ways, and the error mapping of docs/adapters/ecert.md, each answer checked against the
hub schema and xsd/adapters/ecert.xsd, with content from the emulator's seed data (emulators/ecert.py).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import rfc8785
import urllib3
from lxml import etree

from emulators.ecert import ERROR_TEXT, EcertEmulator
from gateway.adapters.payload import PayloadSchema
from tests.test_adapters_e2e import adapter_answer, message_properties, only_response
from tests.test_async_channel import accepted
from tests.test_sync_faults import assert_fault
from tests.wire import REPO_ROOT, Answer, async_send, post, sync_request

NS = "urn:gateway:adapters:ecert"
FAULT_NS = "urn:gateway:adapters"
FIXTURES = Path(__file__).parent / "adapters" / "ecert_fixtures"
BASE = "/api/1.2.1-Y/ec"
ACTIVE = ("2021080713257902301000001", "0f8fad5b-d9cb-469f-a165-70867728950e")
BLOCKED = ("2021080713257902301000002", "7c9e6679-7425-40de-944b-e07fc1f90ae7")
AWAITING = ("2021080713257902301000003", "16fd2706-8baf-433b-82eb-8c7fada847da")
SPENT = ("2021080713257902301000004", "886313e1-3b8a-4372-9b90-0c9aee199e5d")
UNKNOWN = ("2021080713257902301099999", "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d")
LUHN_VALID_CARD = "2200123412341236"  # the docs' example card; the spec's 2200123412341234 fails the Luhn check
FORCEABLE = ["EC00200", "EC00201", "EC00202", "EC00203", "EC00216", "EC00219", "EC00220", "EC00272"]
FAULT_SCHEMA = etree.XMLSchema(etree.parse(str(REPO_ROOT / "xsd" / "adapters" / "common.xsd")))


def q(path: str) -> str:
    """An ElementPath in the payload namespace: ``a/b`` → ``{ns}a/{ns}b``."""
    return "/".join(part if part in (".", "..") else f"{{{NS}}}{part}" for part in path.split("/"))


def text(node: etree._Element, path: str) -> str | None:
    return node.findtext(q(path))


def payload(tag: str, body: str = "") -> str:
    return f'<data><{tag} xmlns="{NS}">{body}</{tag}></data>'


def leaves(**fields: Any) -> str:
    return "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in fields.items())


def statement_request(number: str) -> str:
    return payload("GetDetailedStatementRequest", leaves(certificateNumber=number))


def status_request(*types: str, quantity: int = 100) -> str:
    return payload("GetTasksStatusRequest", "".join(leaves(requestType=t) for t in types) + leaves(taskQuantity=quantity))


def results_request(*task_ids: str) -> str:
    return payload("GetTasksResultsRequest", "".join(leaves(taskId=t) for t in task_ids))


def edit_request(number: str, fact: str, **changes: str) -> str:
    return payload("EditCertificatesRequest", "<record>" + leaves(recordId=1, factAssignmentUuid=fact, certificateNumber=number, **changes) + "</record>")


def block_request(number: str, fact: str, reason: str = "EСВR0003") -> str:
    return payload("BlockCertificatesRequest", "<record>" + leaves(recordId=1, factAssignmentUuid=fact, certificateNumber=number, blockReason=reason) + "</record>")


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def create_request(card: str | None = None, **extra: str) -> str:
    """The spec's §8.1 create example (tests/adapters/ecert_fixtures/create_request.json) as payload XML: kopecks
    become roubles; ``card`` replaces the card number; ``extra`` fields go after ``program``."""
    records = []
    for row in fixture_json("create_request.json"):
        a = row["assignment"]
        goods = "".join(
            "<item>" + leaves(code=i["code"], name=i["name"], maxAmount=f"{i['maxAmount'] / 100:.2f}", quantity=i["quantity"]) + "</item>"
            for i in a["goodsWorksServices"]
        )
        records.append(
            "<record>"
            + leaves(recordId=row["recordId"], pid=a["pid"], phoneNumber=a["phoneNumber"])
            + "<organization>" + leaves(**a["organization"]) + "</organization>"
            + leaves(mspCode=a["mspCode"], budgetaryClassificationCode=a["budgetaryClassificationCode"], startDate=a["startDate"],
                     endDate=a["endDate"], nationalPaymentInstrument=card or a["nationalPaymentInstrument"],
                     certificateType=a["certificateType"], program=a["program"], **extra)
            + f"<goodsWorksServices>{goods}</goodsWorksServices></record>"
        )
    return payload("CreateCertificatesRequest", "".join(records))


def call(sync_url: str, data: str) -> Answer:  # noqa: F811
    return post(sync_url, sync_request(service_id="Ecert", data=data))


def answered(sync_url: str, data: str, tag: str) -> etree._Element:  # noqa: F811
    """The adapter's answer element to ``data`` on the sync channel, valid against hub and payload schema."""
    element = adapter_answer(call(sync_url, data), "ecert")
    assert element.tag == f"{{{NS}}}{tag}", etree.tostring(element)[:500]
    return element


def sub_error(answer: Answer) -> etree._Element | None:
    return answer.fault_info().find("subError")


def assert_provider_fault(answer: Answer, code: str, message: str | None = None) -> None:
    """SCE011 whose subError carries the backend's ``code`` (and, when given, its ``msg``)."""
    assert_fault(answer, "SCE011", "Server")
    sub = sub_error(answer)
    assert sub is not None, answer.body[:800]
    assert sub.findtext("errorCode") == code
    if message is not None:
        assert sub.findtext("errorMessage") == message


def requests_to(emulator: EcertEmulator, operation: str, since: int = 0) -> list[Any]:
    return [r for r in emulator.received[since:] if r.path == f"{BASE}/{operation}"]


def ecert(backends: Any) -> EcertEmulator:  # noqa: F811
    return backends["ecert"]


def backend_url(backend_servers: dict[str, tuple[Any, str]]) -> str:
    return backend_servers["ecert"][1]


# ------------------------------------------------------------------------------------------------ sync: tasks
def submit(sync_url: str, data: str, tag: str, task_type: str) -> etree._Element:  # noqa: F811
    """A create/edit/block on the sync channel: the acknowledged task (final answers come by status/results)."""
    answer = call(sync_url, data)
    element = adapter_answer(answer, "ecert")
    assert element.tag == f"{{{NS}}}{tag}"
    assert answer.payload.findtext("response/responseInfo/status/code") == "REQUEST_IS_QUEUED"
    assert text(element, "taskType") == task_type
    assert text(element, "acknowledgement") == "REQUEST_IS_QUEUED"
    assert text(element, "taskStatus") == "requestIsQueued"
    assert element.find(q("record")) is None
    return element


def listed_status(sync_url: str, task_type: str, task_id: str) -> str | None:  # noqa: F811
    element = answered(sync_url, status_request(task_type), "GetTasksStatusResponse")
    mine = [t for t in element.findall(q("task")) if text(t, "taskId") == task_id]
    assert len(mine) <= 1
    for task in element.findall(q("task")):
        assert text(task, "taskType") == task_type
    return text(mine[0], "taskStatus") if mine else None


def results_of(sync_url: str, task_id: str, task_type: str) -> list[etree._Element]:  # noqa: F811
    element = answered(sync_url, results_request(task_id), "GetTasksResultsResponse")
    results = element.findall(q("taskResult"))
    assert [(text(r, "taskId"), text(r, "taskType")) for r in results] == [(task_id, task_type)]
    return results[0].findall(q("record"))


def run_task(sync_url: str, data: str, tag: str, task_type: str, polls: int = 2) -> list[etree._Element]:  # noqa: F811
    """Submit, list the task's status until it is executed (at its ``polls``-th listing), fetch its records."""
    task_id = text(submit(sync_url, data, tag, task_type), "taskId")
    statuses = [listed_status(sync_url, task_type, task_id) for _ in range(polls)]
    assert statuses[-1] == "taskIsExecuted" and "taskIsExecuted" not in statuses[:-1], statuses
    return results_of(sync_url, task_id, task_type)


def test_create_from_the_spec_example_sends_its_json_signed_and_acknowledges_the_task(sync_url: str, backends: Any) -> None:  # noqa: F811
    emulator = ecert(backends)
    before = len(emulator.received)
    element = submit(sync_url, create_request(), "CreateCertificatesResponse", "ec_create")
    [sent] = requests_to(emulator, "ec-create", before)
    # The emulator got the spec's JSON (15000.00 roubles → 1500000 kopecks), canonical, signed over its bytes.
    assert sent.method == "POST"
    assert sent.body == rfc8785.dumps(fixture_json("create_request.json"))
    assert sent.headers["x-jws-signature"] == emulator.sign(sent.body)
    assert sent.headers["x-api-key"] == "ecert-demo-key"
    # The answer names our x-request-id and the backend's task.
    assert text(element, "requestId") == sent.headers["x-request-id"]
    task = emulator.registry.tasks[text(element, "taskId")]
    assert (task.task_type, task.request_id, task.status) == ("ec_create", sent.headers["x-request-id"], "requestIsQueued")


def test_create_edit_block_and_statement_of_a_new_certificate_over_the_sync_channel(sync_url: str, backends: Any) -> None:  # noqa: F811
    emulator = ecert(backends)
    emulator.set_switches(polls_until_done=3)
    # Create: followed through /ec-tasks-status (one step per listing) to its results.
    task_id = text(submit(sync_url, create_request(card=LUHN_VALID_CARD), "CreateCertificatesResponse", "ec_create"), "taskId")
    not_yet = call(sync_url, results_request(task_id))
    assert_provider_fault(not_yet, "EC00201", "нет выполненных заданий с указанными taskId")
    statuses = [listed_status(sync_url, "ec_create", task_id) for _ in range(3)]
    assert statuses == ["requestIsAcceptedBySmev", "underProcessing", "taskIsExecuted"]
    [record] = results_of(sync_url, task_id, "ec_create")
    assert text(record, "recordId") == "1" and text(record, "processedSuccessfully") == "true"
    assert record.find(q("message")) is None
    certificate = record.find(q("certificate"))
    number, fact = text(certificate, "certificateNumber"), text(certificate, "factAssignmentUuid")
    assert text(record, "factAssignmentUuid") == fact
    assert number in emulator.registry.certificates and emulator.registry.certificates[number].fact_assignment_uuid == fact
    assert (text(certificate, "startDate"), text(certificate, "endDate"), text(certificate, "program")) == ("2024-01-01", "2024-12-31", "ЕСРРАССТ")
    assert text(certificate, "currentStatus/statusCode") == "ECSTACTV"
    assert certificate.find(q("activationSuspensionReason")) is None
    assert text(certificate, "usageStatus") == "ECUSNONE"
    assert [(text(i, "code"), text(i, "maxAmount"), text(i, "quantity")) for i in certificate.findall(q("goodsWorksServices/item"))] == [
        ("32.50.22.129-00000001", "15000.00", "1")
    ]
    assert [(text(b, "code"), text(b, "actualAmount"), text(b, "actualQuantity")) for b in certificate.findall(q("balances/balance"))] == [
        ("32.50.22.129-00000001", "15000.00", "1")
    ]
    # Edit the new certificate's phone number.
    emulator.set_switches(polls_until_done=1)
    [edited] = run_task(sync_url, edit_request(number, fact, phoneNumber="9104560099"), "EditCertificatesResponse", "ec_edit", polls=1)
    assert text(edited, "processedSuccessfully") == "true" and text(edited, "certificate/certificateNumber") == number
    assert emulator.registry.certificates[number].phone == "9104560099"
    # Block it (mixed-script reason EСВR0003 → status reason ECSR0003).
    [blocked] = run_task(sync_url, block_request(number, fact, "EСВR0003"), "BlockCertificatesResponse", "ec_block", polls=1)
    assert text(blocked, "processedSuccessfully") == "true"
    assert (text(blocked, "certificate/currentStatus/statusCode"), text(blocked, "certificate/currentStatus/statusReason")) == ("ECSTBLKD", "ECSR0003")
    statement = answered(sync_url, statement_request(number), "GetDetailedStatementResponse")
    assert text(statement, "certificate/factAssignmentUuid") == fact
    assert text(statement, "certificate/currentStatus/statusCode") == "ECSTBLKD"
    # A blocked certificate can no longer be edited: the backend's EC00219, as a provider fault.
    assert_provider_fault(call(sync_url, edit_request(number, fact, phoneNumber="9104560011")), "EC00219")


def test_the_spec_create_example_makes_a_certificate_awaiting_its_card(sync_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(polls_until_done=1)
    [record] = run_task(sync_url, create_request(), "CreateCertificatesResponse", "ec_create", polls=1)
    assert text(record, "processedSuccessfully") == "true"
    assert text(record, "certificate/currentStatus/statusCode") == "ECSTPACT"
    assert text(record, "certificate/activationSuspensionReason") == "ECASCARD"


def test_record_level_failures_are_answers_not_errors(sync_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(polls_until_done=1)
    [unknown] = run_task(sync_url, block_request(*UNKNOWN), "BlockCertificatesResponse", "ec_block", polls=1)
    assert text(unknown, "processedSuccessfully") == "false" and unknown.find(q("certificate")) is None
    assert [(text(m, "type"), text(m, "ruleCode")) for m in unknown.findall(q("message"))] == [("error", "002")]
    late = create_request(card=LUHN_VALID_CARD).replace("<endDate>2024-12-31T23:59:59+03:00</endDate>", "<endDate>2023-12-31T23:59:59+03:00</endDate>")
    [dates] = run_task(sync_url, late, "CreateCertificatesResponse", "ec_create", polls=1)
    assert text(dates, "processedSuccessfully") == "false"
    assert [text(m, "ruleCode") for m in dates.findall(q("message"))] == ["003"]


def test_tasks_status_sends_the_spec_example_and_lists_tasks(sync_url: str, backends: Any) -> None:  # noqa: F811
    emulator = ecert(backends)
    task_id = text(submit(sync_url, block_request(*UNKNOWN), "BlockCertificatesResponse", "ec_block"), "taskId")
    spec = fixture_json("tasks_status_request.json")
    before = len(emulator.received)
    element = answered(sync_url, status_request(*spec["Request_Types"], quantity=spec["Task_Quantity"]), "GetTasksStatusResponse")
    [sent] = requests_to(emulator, "ec-tasks-status", before)
    assert sent.body == rfc8785.dumps(spec)
    assert all(text(t, "taskType") == "ec_create" for t in element.findall(q("task")))
    assert task_id not in [text(t, "taskId") for t in element.findall(q("task"))]
    both = answered(sync_url, status_request("ec_create", "ec_block"), "GetTasksStatusResponse")
    listed = {text(t, "taskId"): (text(t, "taskType"), text(t, "taskStatus")) for t in both.findall(q("task"))}
    assert listed[task_id] == ("ec_block", "requestIsAcceptedBySmev")


@pytest.mark.parametrize(
    ("number", "fact", "expected"),
    [
        (*ACTIVE, {"currentStatus/statusCode": "ECSTACTV", "currentStatus/statusReason": "ECSR9999", "usageStatus": "ECUSPART"}),
        (*BLOCKED, {"currentStatus/statusCode": "ECSTBLKD", "currentStatus/statusReason": "ECSR0001", "program": "ЕСРРАССС", "certificateAmount": "50000.00"}),
        (*AWAITING, {"currentStatus/statusCode": "ECSTPACT", "activationSuspensionReason": "ECASCARD", "certificateAmount": "20000.00"}),
        (*SPENT, {"currentStatus/statusCode": "ECSTCLSD", "currentStatus/statusReason": "ECSR0006", "usageStatus": "ECUSFULL", "certificateQuantity": "2"}),
    ],
    ids=["active", "blocked", "awaiting-card", "closed"],
)
def test_detailed_statement_of_each_seed_certificate(sync_url: str, backends: Any, number: str, fact: str, expected: dict[str, str]) -> None:  # noqa: F811
    emulator = ecert(backends)
    before = len(emulator.received)
    statement = answered(sync_url, statement_request(number), "GetDetailedStatementResponse")
    [sent] = requests_to(emulator, "ec-detailed-statement", before)
    assert (sent.method, sent.query, sent.body) == ("GET", f"cn={number}", b"")
    certificate = statement.find(q("certificate"))
    assert (text(certificate, "certificateNumber"), text(certificate, "factAssignmentUuid")) == (number, fact)
    for path, value in expected.items():
        assert text(certificate, path) == value, path


def test_detailed_statement_carries_the_purchase_and_balances_in_roubles(sync_url: str, backends: Any) -> None:  # noqa: F811
    certificate = answered(sync_url, statement_request(ACTIVE[0]), "GetDetailedStatementResponse").find(q("certificate"))
    assert (text(certificate, "startDate"), text(certificate, "endDate")) == ("2021-08-07", "2026-12-31")
    [item] = certificate.findall(q("goodsWorksServices/item"))
    assert (text(item, "name"), text(item, "maxAmount"), text(item, "quantity")) == ("Кресло-коляска с ручным приводом", "15000.00", "2")
    [balance] = certificate.findall(q("balances/balance"))
    assert (text(balance, "code"), text(balance, "actualAmount"), text(balance, "actualQuantity")) == ("32.50.22.129-00000001", "15500.00", "1")
    [purchase] = certificate.findall(q("usageTransactions/transaction"))
    assert (text(purchase, "transactionNumber"), text(purchase, "transactionType")) == ("1000000000000001", "OPTPPRCH")
    assert (text(purchase, "totalAmount"), text(purchase, "totalFullAmount")) == ("14500.00", "15000.00")
    assert (text(purchase, "item/amount"), text(purchase, "item/fullAmount"), text(purchase, "item/quantity")) == ("14500.00", "15000.00", "1")
    assert (text(purchase, "seller/fullName"), text(purchase, "seller/INN")) == ("ООО «Реабилитация»", "7701234567")
    assert text(purchase, "location/address") == "Москва, ул. Тверская, д. 1"
    # Fully used: the emulator omits the zero balances; the certificate's limits read as 0, the item's stay absent.
    spent = answered(sync_url, statement_request(SPENT[0]), "GetDetailedStatementResponse").find(q("certificate"))
    assert (text(spent, "certificateAmount"), text(spent, "certificateActualAmount")) == ("10000.00", "0.00")
    assert (text(spent, "certificateQuantity"), text(spent, "certificateActualQuantity")) == ("2", "0")
    assert [(text(b, "code"), text(b, "actualAmount")) for b in spent.findall(q("balances/balance"))] == [("32.50.22.110-00000004", None)]


# ------------------------------------------------------------------------------------------------ signatures
def test_the_request_reaches_the_backend_signed_and_the_backend_checks_it(
    sync_url: str, backends: Any, backend_servers: dict[str, tuple[Any, str]]  # noqa: F811
) -> None:
    emulator = ecert(backends)
    assert emulator.switches.require_signature
    before = len(emulator.received)
    answered(sync_url, statement_request(ACTIVE[0]), "GetDetailedStatementResponse")
    [sent] = requests_to(emulator, "ec-detailed-statement", before)
    # A bodiless GET is signed over the empty payload, with the shared key.
    assert sent.headers["x-jws-signature"] == emulator.sign(b"")
    assert sent.headers["x-jws-signature"].count(".") == 2 and ".." in sent.headers["x-jws-signature"]
    # The emulator does check it: the same request replayed as sent is served, with a broken signature refused.
    url = f"{backend_url(backend_servers)}{sent.path}?{sent.query}"
    keep = {k: v for k, v in sent.headers.items() if k.startswith("x-")}
    assert urllib3.request("GET", url, headers=keep, retries=False).status == 200
    header, _, mac = keep["x-jws-signature"].partition("..")
    broken = urllib3.request("GET", url, headers={**keep, "x-jws-signature": f"{header}..{mac[::-1]}"}, retries=False)
    assert broken.status == 401 and json.loads(broken.data)["Errors"][0]["code"] == "EC00201"
    unsigned = urllib3.request("GET", url, headers={k: v for k, v in keep.items() if k != "x-jws-signature"}, retries=False)
    assert unsigned.status == 401


@pytest.mark.parametrize("switch", ["forge_response_signature", "omit_response_signature"])
@pytest.mark.parametrize(
    ("data", "forced"),
    [
        (statement_request(ACTIVE[0]), None),
        (status_request("ec_create"), None),
        (statement_request(UNKNOWN[0]), None),
        (statement_request(ACTIVE[0]), "EC00272"),
    ],
    ids=["statement", "tasks-status", "not-found-error", "forced-error"],
)
def test_an_answer_without_a_valid_signature_is_refused_and_not_passed_on(
    sync_url: str, backends: Any, switch: str, data: str, forced: str | None  # noqa: F811
) -> None:
    emulator = ecert(backends)
    emulator.set_switches(**{switch: True, "force_error": forced})
    before = len(emulator.received)
    answer = call(sync_url, data)
    assert len(emulator.received) == before + 1, "the backend was asked and answered"
    assert_fault(answer, "SCE013", "Server")
    assert sub_error(answer) is None, "a backend code from an unverified answer is not passed on"
    for leaked in (ACTIVE[1], "ECSTACTV", "Кресло", "EC00216", "EC00272", ERROR_TEXT["EC00216"], ERROR_TEXT["EC00272"]):
        assert leaked not in answer.body.decode(), leaked
    # The same call with the signature back is answered.
    emulator.set_switches(**{switch: False, "force_error": None})
    again = call(sync_url, data)
    if data == statement_request(UNKNOWN[0]):
        assert_provider_fault(again, "EC00216")
    else:
        adapter_answer(again, "ecert")


def test_a_wrong_api_key_is_a_provider_fault_without_the_backends_code(sync_url: str, backends: Any) -> None:  # noqa: F811
    emulator = ecert(backends)
    key = emulator.api_key
    emulator.api_key = "another-clients-key"
    try:
        answer = call(sync_url, statement_request(ACTIVE[0]))
    finally:
        emulator.api_key = key
    assert_provider_fault(answer, "HTTP401")


# ------------------------------------------------------------------------------------------------ error mapping
@pytest.mark.parametrize("code", FORCEABLE)
def test_every_backend_error_code_is_a_provider_fault_carrying_it(sync_url: str, backends: Any, code: str) -> None:  # noqa: F811
    ecert(backends).set_switches(force_error=code)
    assert_provider_fault(call(sync_url, statement_request(ACTIVE[0])), code, ERROR_TEXT[code])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (statement_request(UNKNOWN[0]), "EC00216"),
        (edit_request(*BLOCKED, phoneNumber="9104560000"), "EC00219"),
        (block_request(*BLOCKED), "EC00219"),
        (edit_request(*AWAITING, phoneNumber="9104560000"), "EC00220"),
        (block_request(*AWAITING), "EC00220"),
        (results_request("9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"), "EC00201"),
    ],
    ids=["unknown-cn", "edit-blocked", "block-blocked", "edit-awaiting", "block-awaiting", "results-of-no-task"],
)
def test_backend_refusals_of_real_requests(sync_url: str, backends: Any, data: str, code: str) -> None:  # noqa: F811
    emulator = ecert(backends)
    states = {n: c.status_code for n, c in emulator.registry.certificates.items()}
    answer = call(sync_url, data)
    assert_provider_fault(answer, code)
    assert {n: c.status_code for n, c in emulator.registry.certificates.items()} == states, "a refused request changes nothing"


@pytest.mark.parametrize(
    "data",
    [
        create_request(card=LUHN_VALID_CARD, certificateAmount="100.00"),  # §12: no certificateAmount on ЕСТР0001
        statement_request("12345"),
        payload("GetTasksStatusRequest", leaves(requestType="ec_create", taskQuantity=101)),
        payload("BlockCertificatesRequest", "<record>" + leaves(recordId=1, factAssignmentUuid=ACTIVE[1], certificateNumber=ACTIVE[0], blockReason="ECBR0003") + "</record>"),
        '<data><GetDetailedStatementRequest xmlns="urn:other"><certificateNumber>2021080713257902301000001</certificateNumber></GetDetailedStatementRequest></data>',
    ],
    ids=["presence-rule", "bad-number", "too-many-tasks", "latin-block-reason", "foreign-namespace"],
)
def test_malformed_data_is_refused_before_the_backend(sync_url: str, backends: Any, data: str) -> None:  # noqa: F811
    emulator = ecert(backends)
    before = len(emulator.received)
    assert_fault(call(sync_url, data), "SCE001", "Client")
    assert len(emulator.received) == before


@pytest.mark.parametrize("down", ["503", "drop"])
def test_a_backend_that_is_down_is_unreachable(sync_url: str, backends: Any, down: str) -> None:  # noqa: F811
    ecert(backends).set_switches(down=down)
    assert_fault(call(sync_url, statement_request(ACTIVE[0])), "SCE009", "Server")


def test_a_backend_slower_than_the_exchange_budget_times_out(sync_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(delay_seconds=5.5)  # the test gateway's sync budget is 5 s
    started = time.monotonic()
    assert_fault(call(sync_url, statement_request(ACTIVE[0])), "SCE010", "Server")
    assert time.monotonic() - started < 5.5


# ------------------------------------------------------------------------------------------------ async
def response_to(async_url: str, data: str) -> etree._Element:  # noqa: F811
    """Send ``data`` to EcertAsync; the one RESPONSE ``pep`` fetches once the REQUEST is delivered."""
    request_id, correlation_id = accepted(post(async_url, async_send("EcertAsync", data=data)))
    return only_response(async_url, "EcertAsync", request_id, correlation_id)


def adapter_fault(message: etree._Element) -> etree._Element:
    fault = message.find("messageData/data")[0]
    assert fault.tag == f"{{{FAULT_NS}}}AdapterFault"
    FAULT_SCHEMA.assertValid(fault)
    return fault


@pytest.mark.parametrize("polls", [1, 4])
def test_an_async_create_is_polled_until_done_and_delivered_once_with_its_certificate(async_url: str, backends: Any, polls: int) -> None:  # noqa: F811
    emulator = ecert(backends)
    emulator.set_switches(polls_until_done=polls)
    before = len(emulator.received)
    message = response_to(async_url, create_request(card=LUHN_VALID_CARD))
    answer = message.find("messageData/data")[0]
    PayloadSchema.of("ecert").check_answer(answer)
    assert answer.tag == f"{{{NS}}}CreateCertificatesResponse"
    assert (text(answer, "taskType"), text(answer, "acknowledgement"), text(answer, "taskStatus")) == ("ec_create", "REQUEST_IS_QUEUED", "taskIsExecuted")
    assert message_properties(message)["adapterStatusCode"] == "OK"
    assert message_properties(message)["adapterStatusMessage"] == "1 records processed"
    [record] = answer.findall(q("record"))
    assert text(record, "processedSuccessfully") == "true"
    certificate = record.find(q("certificate"))
    number = text(certificate, "certificateNumber")
    assert emulator.registry.certificates[number].fact_assignment_uuid == text(certificate, "factAssignmentUuid") == text(record, "factAssignmentUuid")
    assert text(certificate, "currentStatus/statusCode") == "ECSTACTV" and text(certificate, "program") == "ЕСРРАССТ"
    assert [(text(i, "code"), text(i, "maxAmount")) for i in certificate.findall(q("goodsWorksServices/item"))] == [("32.50.22.129-00000001", "15000.00")]
    # The emulator saw one create, the status polls until the task was done, then one results request.
    [created] = requests_to(emulator, "ec-create", before)
    assert text(answer, "requestId") == created.headers["x-request-id"]
    task = emulator.registry.tasks[text(answer, "taskId")]
    assert task.polls == polls and task.fetched
    status_polls = [r for r in requests_to(emulator, "ec-tasks-status", before) if json.loads(r.body)["Request_Types"] == ["ec_create"]]
    assert len(status_polls) == polls
    assert all(r.headers["x-jws-signature"] == emulator.sign(r.body) for r in status_polls)
    assert len(requests_to(emulator, "ec-tasks-results", before)) == 1


def test_an_async_task_that_fails_at_the_backend_is_delivered_with_its_status(async_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(polls_until_done=2, final_status="cancelled")
    message = response_to(async_url, block_request(*UNKNOWN))
    answer = message.find("messageData/data")[0]
    PayloadSchema.of("ecert").check_answer(answer)
    assert answer.tag == f"{{{NS}}}BlockCertificatesResponse"
    assert text(answer, "taskStatus") == "cancelled" and answer.find(q("record")) is None
    assert message_properties(message)["adapterStatusCode"] == "cancelled"


def test_async_record_failures_are_delivered_as_records_failed(async_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(polls_until_done=1)
    message = response_to(async_url, edit_request(*UNKNOWN, phoneNumber="9104560000"))
    answer = message.find("messageData/data")[0]
    PayloadSchema.of("ecert").check_answer(answer)
    assert text(answer, "taskStatus") == "taskIsExecuted"
    assert [text(r, "message/ruleCode") for r in answer.findall(q("record"))] == ["002"]
    assert message_properties(message)["adapterStatusCode"] == "RECORDS_FAILED"


def test_an_async_refusal_reaches_the_initiator_as_an_adapter_fault(async_url: str, backends: Any) -> None:  # noqa: F811
    ecert(backends).set_switches(force_error="EC00272")
    message = response_to(async_url, create_request(card=LUHN_VALID_CARD))
    fault = adapter_fault(message)
    assert fault.findtext(f"{{{FAULT_NS}}}errorCode") == "SCE011"
    assert fault.findtext(f"{{{FAULT_NS}}}backendCode") == "EC00272"
    assert fault.findtext(f"{{{FAULT_NS}}}backendMessage") == ERROR_TEXT["EC00272"]
    assert message_properties(message)["adapterStatusCode"] == "SCE011"


def test_an_async_forged_status_answer_is_never_passed_on(async_url: str, backends: Any) -> None:  # noqa: F811
    emulator = ecert(backends)
    # The create's acknowledgement is text/plain and unsigned by protocol; the forged JSON status answer is refused.
    emulator.set_switches(polls_until_done=1, forge_response_signature=True)
    before = len(emulator.received)
    message = response_to(async_url, create_request(card=LUHN_VALID_CARD))
    fault = adapter_fault(message)
    assert fault.findtext(f"{{{FAULT_NS}}}errorCode") == "SCE013"
    assert fault.find(f"{{{FAULT_NS}}}backendCode") is None
    assert message_properties(message)["adapterStatusCode"] == "SCE013"
    assert requests_to(emulator, "ec-tasks-status", before), "the status answer was received and refused"
    assert not requests_to(emulator, "ec-tasks-results", before), "no result was fetched on a forged status"
    body = etree.tostring(message, encoding="unicode")
    assert "taskIsExecuted" not in body and "ECSTACTV" not in body
