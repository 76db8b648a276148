"""State of the ИС ЭС emulator: certificates (with deterministic seed data) and the tasks that create, edit and
block them (spec §9, §13.1 items 3–4)."""
from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from emulators.ecert_schema import BlockRow, CreateRow, EditRow

# Record-level rule codes (the ГИС ЭС catalogue is not public; spec open question 18).
RULE_UNKNOWN_CERTIFICATE = "002"
RULE_DATES = "003"
RULE_ALREADY_BLOCKED = "004"

PROGRESSION = ("requestIsQueued", "requestIsAcceptedBySmev", "underProcessing", "responseIsAcceptedBySmev")
FINAL_FAILURES = ("requestIsRejectedBySmev", "responseIsRejectedBySmev", "cancelled")
BLOCKED = ("ECSTPBLK", "ECSTBLKD")
# statusReason must always be sent; ECSR9999 stands for "no particular reason" (spec open question 13).
NO_REASON = "ECSR9999"


def now() -> str:
    """Response date-times always carry an offset (spec §10.9)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Certificate:
    """One certificate as the emulator keeps it; :meth:`to_json` is its ``eCertificate``."""

    fact_assignment_uuid: str
    number: str
    certificate_type: str
    program: str
    start_date: str
    end_date: str
    goods: list[dict[str, Any]]
    pid: str
    phone: str
    card: str
    amount: int | None = None
    quantity: int | None = None
    status_code: str = "ECSTACTV"
    status_reason: str = NO_REASON
    status_time: str = "2021-08-07T13:25:00+03:00"
    usage_status: str = "ECUSNONE"
    suspension: str | None = None
    actual_amount: int | None = None
    actual_quantity: int | None = None
    balances: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)

    def set_status(self, code: str, reason: str = NO_REASON) -> None:
        self.status_code, self.status_reason, self.status_time = code, reason, now()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "factAssignmentUuid": self.fact_assignment_uuid,
            "certificateNumber": self.number,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "program": self.program,
            "goodsWorksServices": copy.deepcopy(self.goods),
            "usageStatus": self.usage_status,
            "currentStatus": {"statusCode": self.status_code, "statusReason": self.status_reason, "statusDateTime": self.status_time},
            "eCertificateBalance": copy.deepcopy(self.balances),
        }
        if self.amount is not None:
            body["certificateAmount"] = self.amount
        if self.quantity is not None:
            body["certificateQuantity"] = self.quantity
        if self.suspension:
            body["activationSuspensionReasons"] = self.suspension
        # Minimum 1 in the schema: a zero balance is omitted (spec open question 15).
        if self.actual_amount:
            body["certificateActualAmount"] = self.actual_amount
        if self.actual_quantity:
            body["certificateActualQuantity"] = self.actual_quantity
        if self.transactions:
            body["usageTransactions"] = copy.deepcopy(self.transactions)
        return body


def opening_balances(certificate_type: str, goods: list[dict[str, Any]], amount: int | None, quantity: int | None) -> tuple[int | None, int | None, list[dict[str, Any]]]:
    """(certificateActualAmount, certificateActualQuantity, eCertificateBalance) of a new certificate (§12)."""
    balances = []
    for item in goods:
        balance: dict[str, Any] = {"code": item["code"]}
        if certificate_type == "ЕСТР0001":
            balance["actualAmount"] = item["maxAmount"] * item["quantity"]
        if certificate_type in ("ЕСТР0001", "ЕСТР0004"):
            balance["actualQuantity"] = item["quantity"]
        balances.append(balance)
    return (None if certificate_type == "ЕСТР0001" else amount), (quantity if certificate_type == "ЕСТР0003" else None), balances


def seed_certificates() -> dict[str, Certificate]:
    """The deterministic seed (documented in emulators/ecert.py)."""
    wheelchair = {"code": "32.50.22.129-00000001", "name": "Кресло-коляска с ручным приводом", "maxAmount": 1500000, "quantity": 2}
    active = Certificate(
        "0f8fad5b-d9cb-469f-a165-70867728950e", "2021080713257902301000001", "ЕСТР0001", "ЕСРРАССТ",
        "2021-08-07", "2026-12-31", [wheelchair], "12345678901", "9104560011", "2200123412341234",
        status_time="2021-08-07T13:25:00+03:00", usage_status="ECUSPART",
        balances=[{"code": wheelchair["code"], "actualAmount": 1550000, "actualQuantity": 1}],
        transactions=[{
            "transactionNumber": 1000000000000001,
            "transactionType": "OPTPPRCH",
            "transactionTimestamp": "2021-09-01T12:00:00+03:00",
            "transactionAddress": "Москва, ул. Тверская, д. 1",
            "transactionGoodsWorksServices": [{
                "code": wheelchair["code"], "name": wheelchair["name"],
                "transactionAmount": 1450000, "transactionFullAmount": 1500000, "transactionQuantity": 1,
            }],
            "seller": {"fullName": "ООО «Реабилитация»", "INN": "7701234567", "KPP": "770101001"},
            "transactionLocation": {"address": "Москва, ул. Тверская, д. 1", "latitude": 55.7558, "longitude": 37.6173},
            "transactionTotalAmount": 1450000,
            "transactionTotalFullAmount": 1500000,
        }],
    )
    blocked = Certificate(
        "7c9e6679-7425-40de-944b-e07fc1f90ae7", "2021080713257902301000002", "ЕСТР0002", "ЕСРРАССС",
        "2021-08-07", "2026-12-31", [{"code": "86.90.19.190-00000002", "name": "Курс реабилитации"}],
        "23456789012", "9104560022", "2200123412341242", amount=5000000,
        status_code="ECSTBLKD", status_reason="ECSR0001", status_time="2022-01-10T09:00:00+03:00",
        actual_amount=5000000, balances=[{"code": "86.90.19.190-00000002"}],
    )
    awaiting = Certificate(
        "16fd2706-8baf-433b-82eb-8c7fada847da", "2021080713257902301000003", "ЕСТР0004", "ЕСРРАССТ",
        "2021-08-07", "2026-12-31", [{"code": "32.50.22.152-00000003", "name": "Трость опорная", "quantity": 4}],
        "34567890123", "9104560033", "2200123412341230", amount=2000000,
        status_code="ECSTPACT", status_time="2021-08-07T13:30:00+03:00", suspension="ECASCARD",
        actual_amount=2000000, balances=[{"code": "32.50.22.152-00000003", "actualQuantity": 4}],
    )
    spent = Certificate(
        "886313e1-3b8a-4372-9b90-0c9aee199e5d", "2021080713257902301000004", "ЕСТР0003", "ЕСРРАССТ",
        "2021-08-07", "2022-12-31", [{"code": "32.50.22.110-00000004", "name": "Слуховой аппарат", "maxAmount": 500000}],
        "45678901234", "9104560044", "2200123412341259", amount=1000000, quantity=2,
        status_code="ECSTCLSD", status_reason="ECSR0006", status_time="2022-06-01T10:00:00+03:00", usage_status="ECUSFULL",
        balances=[{"code": "32.50.22.110-00000004"}],
    )
    return {c.number: c for c in (active, blocked, awaiting, spent)}


def luhn_valid(number: str) -> bool:
    """Whether a card number passes the Luhn check (a failing one suspends activation: ECASCARD)."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        total += digit if position % 2 == 0 else (digit * 2 - 9 if digit > 4 else digit * 2)
    return total % 10 == 0


@dataclass
class Task:
    """One accepted create/edit/block request and its progress."""

    id: str
    task_type: str
    api_key: str
    request_id: str
    rows: list[Any]
    final_status: str
    received_at: str = field(default_factory=now)
    status: str = "requestIsQueued"
    polls: int = 0
    results: list[dict[str, Any]] | None = None
    fetched: bool = False
    # Block tasks put their certificates in ECSTPBLK at once; a failed task restores the previous status.
    previous_status: dict[str, tuple[str, str, str]] = field(default_factory=dict)


class Registry:
    """Certificates and tasks; the caller serialises access."""

    def __init__(self) -> None:
        self.certificates = seed_certificates()
        self.tasks: dict[str, Task] = {}
        self._numbers = itertools.count(1)

    def find(self, number: str, fact_uuid: str) -> Certificate | None:
        certificate = self.certificates.get(number)
        return certificate if certificate is not None and certificate.fact_assignment_uuid == fact_uuid.lower() else None

    def accept(self, task: Task) -> None:
        """Register ``task``; a block puts its certificates in "awaiting blocking"."""
        self.tasks[task.id] = task
        if task.task_type == "ec_block":
            for row in task.rows:
                certificate = self.find(row.certificateNumber, row.factAssignmentUuid)
                if certificate is not None and certificate.number not in task.previous_status:
                    task.previous_status[certificate.number] = (certificate.status_code, certificate.status_reason, certificate.status_time)
                    certificate.set_status("ECSTPBLK", certificate.status_reason)

    def advance(self, task: Task, polls_until_done: int) -> None:
        """One more /ec-tasks-status listing of ``task``: it moves along the happy path and becomes final once
        listed ``polls_until_done`` times."""
        if task.status == "taskIsExecuted" or task.status in FINAL_FAILURES:
            return
        task.polls += 1
        if task.polls < polls_until_done:
            task.status = PROGRESSION[min(task.polls, len(PROGRESSION) - 1)]
            return
        task.status = task.final_status
        if task.status == "taskIsExecuted":
            task.results = [self._execute(task, row) for row in task.rows]
        else:
            for number, (code, reason, when) in task.previous_status.items():
                certificate = self.certificates[number]
                certificate.status_code, certificate.status_reason, certificate.status_time = code, reason, when

    def _execute(self, task: Task, row: Any) -> dict[str, Any]:
        if isinstance(row, CreateRow):
            return self._create(task, row)
        certificate = self.find(row.certificateNumber, row.factAssignmentUuid)
        if certificate is None:
            return _failed(task, row.recordId, RULE_UNKNOWN_CERTIFICATE, "Сертификат с таким номером и factAssignmentUuid не найден")
        if isinstance(row, EditRow):
            certificate.pid = row.pid or certificate.pid
            certificate.phone = row.phoneNumber or certificate.phone
            certificate.card = row.nationalPaymentInstrument or certificate.card
        elif isinstance(row, BlockRow):
            if certificate.status_code == "ECSTBLKD":
                return _failed(task, row.recordId, RULE_ALREADY_BLOCKED, "Сертификат уже заблокирован")
            # EСВR000N → ECSR000N: same number, Latin letters (spec §13.1).
            certificate.set_status("ECSTBLKD", "ECSR" + row.blockReason[4:])
        return _succeeded(task, row.recordId, certificate)

    def _create(self, task: Task, row: CreateRow) -> dict[str, Any]:
        assignment = row.assignment
        start = datetime.fromisoformat(assignment.startDate.replace("Z", "+00:00"))
        end = datetime.fromisoformat(assignment.endDate.replace("Z", "+00:00"))
        if end.date() < start.date():
            return _failed(task, row.recordId, RULE_DATES, "Дата окончания действия раньше даты начала")
        goods = [item.model_dump(exclude_none=True) for item in assignment.goodsWorksServices]
        actual_amount, actual_quantity, balances = opening_balances(
            assignment.certificateType, goods, assignment.certificateAmount, assignment.certificateQuantity
        )
        card_ok = luhn_valid(assignment.nationalPaymentInstrument)
        certificate = Certificate(
            fact_assignment_uuid=str(uuid.uuid4()),
            number=f"{date.today():%Y%m%d}{next(self._numbers):017d}",
            certificate_type=assignment.certificateType,
            program=assignment.program,
            start_date=start.date().isoformat(),
            end_date=end.date().isoformat(),
            goods=goods,
            pid=assignment.pid,
            phone=assignment.phoneNumber,
            card=assignment.nationalPaymentInstrument,
            amount=assignment.certificateAmount,
            quantity=assignment.certificateQuantity,
            status_code="ECSTACTV" if card_ok else "ECSTPACT",
            status_time=now(),
            suspension=None if card_ok else "ECASCARD",
            actual_amount=actual_amount,
            actual_quantity=actual_quantity,
            balances=balances,
        )
        self.certificates[certificate.number] = certificate
        return _succeeded(task, row.recordId, certificate)


def _protocol(task: Task, success: bool) -> dict[str, Any]:
    return {"receivingTime": task.received_at, "processingTime": now(), "isProcessedSuccessfully": success}


def _succeeded(task: Task, record_id: int, certificate: Certificate) -> dict[str, Any]:
    return {
        "recordId": record_id,
        "protocol": _protocol(task, True),
        "factAssignmentUuid": certificate.fact_assignment_uuid,
        "eCertificate": certificate.to_json(),
    }


def _failed(task: Task, record_id: int, rule: str, text: str) -> dict[str, Any]:
    protocol = _protocol(task, False)
    protocol["processingProtocol"] = [{"MessageType": 1, "ruleCode": rule, "MessageMetadata": text}]
    return {"recordId": record_id, "protocol": protocol}
