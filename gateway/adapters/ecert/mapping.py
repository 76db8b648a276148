"""Payload XML ↔ ИС ЭС JSON.

Requests are built from schema-valid ``data`` (so reading them cannot fail on shape); answers are built from the
backend's JSON, which is untrusted: :func:`read_failure` turns any shape surprise into PROVIDER_RESPONSE_INVALID.
Money is roubles (Decimal) in XML and integer kopecks on the wire (spec open question 14)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from gateway.adapters.ecert.codes import latin
from gateway.errors import ErrorCode, GatewayError

NS = "urn:gateway:adapters:ecert"
_KOPECKS = Decimal(100)

# Enumerations whose wire spelling is Cyrillic or mixed: the backend may answer with the Latin look-alike.
_PROGRAMS = {latin(value): value for value in ("ЕСРРАССТ", "ЕСРРАССС")}

# §12: which amount/quantity fields each certificate type fills (the others must be absent).
_PRESENCE: dict[str, dict[str, bool]] = {
    "ЕСТР0001": {"certificateAmount": False, "certificateQuantity": False, "maxAmount": True, "quantity": True},
    "ЕСТР0002": {"certificateAmount": True, "certificateQuantity": False, "maxAmount": False, "quantity": False},
    "ЕСТР0003": {"certificateAmount": True, "certificateQuantity": True, "maxAmount": True, "quantity": False},
    "ЕСТР0004": {"certificateAmount": True, "certificateQuantity": False, "maxAmount": False, "quantity": True},
}


def q(name: str) -> str:
    """Qualified name in the payload namespace."""
    return f"{{{NS}}}{name}"


# ---------------------------------------------------------------------------------------------- reading XML
def _text(parent: etree._Element, name: str) -> str | None:
    child = parent.find(q(name))
    return None if child is None or child.text is None else child.text.strip()


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return parent.findall(q(name))


def to_kopecks(roubles: str) -> int:
    """``"1500.5"`` → ``150050`` (the schema allows at most two fraction digits, so this is exact)."""
    return int(Decimal(roubles) * _KOPECKS)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _goods(parent: etree._Element) -> list[dict[str, Any]]:
    items = []
    for item in _children(parent.find(q("goodsWorksServices")), "item"):
        entry: dict[str, Any] = {"code": _text(item, "code"), "name": _text(item, "name")}
        max_amount = _text(item, "maxAmount")
        _put(entry, "maxAmount", None if max_amount is None else to_kopecks(max_amount))
        quantity = _text(item, "quantity")
        _put(entry, "quantity", None if quantity is None else int(quantity))
        items.append(entry)
    return items


def _check_presence(record_id: int, certificate_type: str, assignment: dict[str, Any]) -> None:
    rules = _PRESENCE[certificate_type]
    fields = {"certificateAmount": "certificateAmount" in assignment, "certificateQuantity": "certificateQuantity" in assignment}
    goods = assignment["goodsWorksServices"]
    problems = [
        f"{name} must {'be' if wanted else 'not be'} given"
        for name, present in fields.items()
        if (wanted := rules[name]) != present
    ]
    for field in ("maxAmount", "quantity"):
        wanted = rules[field]
        if any((field in item) != wanted for item in goods):
            problems.append(f"goodsWorksServices/item/{field} must {'be' if wanted else 'not be'} given")
    if problems:
        raise GatewayError(
            ErrorCode.MALFORMED_MESSAGE, f"data: record {record_id} of type {certificate_type}: {'; '.join(problems)}"
        )


def create_body(data: etree._Element) -> list[dict[str, Any]]:
    """``ecCreateCertificatesRequest`` from CreateCertificatesRequest (checking the §12 presence rules)."""
    rows = []
    for record in _children(data, "record"):
        organization = record.find(q("organization"))
        assignment: dict[str, Any] = {
            "pid": _text(record, "pid"),
            "phoneNumber": _text(record, "phoneNumber"),
            "organization": {name: _text(organization, name) for name in ("rid", "fullname", "account", "INN", "KPP")},
            "mspCode": _text(record, "mspCode"),
        }
        _put(assignment, "lmspCode", _text(record, "lmspCode"))
        for name in ("budgetaryClassificationCode", "startDate", "endDate", "nationalPaymentInstrument", "certificateType", "program"):
            assignment[name] = _text(record, name)
        amount = _text(record, "certificateAmount")
        _put(assignment, "certificateAmount", None if amount is None else to_kopecks(amount))
        quantity = _text(record, "certificateQuantity")
        _put(assignment, "certificateQuantity", None if quantity is None else int(quantity))
        assignment["goodsWorksServices"] = _goods(record)
        record_id = int(_text(record, "recordId") or 0)
        _check_presence(record_id, assignment["certificateType"], assignment)
        rows.append({"recordId": record_id, "assignment": assignment})
    return rows


def edit_body(data: etree._Element) -> list[dict[str, Any]]:
    """``ecEditRequest`` from EditCertificatesRequest."""
    rows = []
    for record in _children(data, "record"):
        row: dict[str, Any] = {
            "recordId": int(_text(record, "recordId") or 0),
            "factAssignmentUuid": _text(record, "factAssignmentUuid"),
            "certificateNumber": _text(record, "certificateNumber"),
        }
        for name in ("pid", "phoneNumber", "nationalPaymentInstrument"):
            _put(row, name, _text(record, name))
        rows.append(row)
    return rows


def block_body(data: etree._Element) -> list[dict[str, Any]]:
    """``ecBlockRequest`` from BlockCertificatesRequest (block reasons keep their mixed-script spelling)."""
    return [
        {
            "recordId": int(_text(record, "recordId") or 0),
            "factAssignmentUuid": _text(record, "factAssignmentUuid"),
            "certificateNumber": _text(record, "certificateNumber"),
            "blockReason": _text(record, "blockReason"),
        }
        for record in _children(data, "record")
    ]


def tasks_status_body(data: etree._Element) -> dict[str, Any]:
    """``ec_tasks_status_Request_schema`` from GetTasksStatusRequest."""
    types = list(dict.fromkeys(element.text.strip() for element in _children(data, "requestType")))
    return {"Request_Types": types, "Task_Quantity": int(_text(data, "taskQuantity") or 0)}


def tasks_results_body(task_ids: list[str]) -> dict[str, Any]:
    """``ec_result_Request_schema`` for ``task_ids``."""
    return {"eCertificateRequest_TaskResult": [{"taskId": task_id} for task_id in task_ids]}


def requested_task_ids(data: etree._Element) -> list[str]:
    """The task ids of a GetTasksResultsRequest, without repeats, in order."""
    return list(dict.fromkeys(element.text.strip().lower() for element in _children(data, "taskId")))


# ---------------------------------------------------------------------------------------------- writing XML
@contextmanager
def read_failure(what: str) -> Iterator[None]:
    """Report a backend JSON value of the wrong shape as PROVIDER_RESPONSE_INVALID."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{what}: unexpected content ({type(exc).__name__}: {exc})") from exc


def element(name: str, *children: etree._Element | None, text: str | None = None) -> etree._Element:
    """A payload element with ``children`` (None skipped) or ``text``."""
    node = etree.Element(q(name), nsmap={None: NS})
    node.text = text
    for child in children:
        if child is not None:
            node.append(child)
    return node


def leaf(name: str, value: Any) -> etree._Element | None:
    """A text element, or None when ``value`` is None (an absent optional field)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return element(name, text="true" if value else "false")
    if not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be a string or an integer, got {type(value).__name__}")
    return element(name, text=str(value))


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def roubles(kopecks: Any) -> str:
    """Integer kopecks → roubles text with two decimals (``150050`` → ``"1500.50"``)."""
    return str((Decimal(_integer(kopecks)) / _KOPECKS).quantize(Decimal("0.01")))


def _amount(name: str, kopecks: Any) -> etree._Element | None:
    return None if kopecks is None else element(name, text=roubles(kopecks))


def _count(name: str, value: Any) -> etree._Element | None:
    return None if value is None else element(name, text=str(_integer(value)))


def _enum(name: str, value: Any, canonical: Callable[[str], str] = latin) -> etree._Element | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return element(name, text=canonical(value))


def _program(value: str) -> str:
    return _PROGRAMS.get(latin(value), value)


def _goods_list(value: Any) -> etree._Element:
    # eCertificateReport writes a single object where every other schema has an array (spec §15.7).
    items = value if isinstance(value, list) else [value]
    return element(
        "goodsWorksServices",
        *(
            element(
                "item",
                leaf("code", item["code"]),
                leaf("name", item["name"]),
                _amount("maxAmount", item.get("maxAmount")),
                _count("quantity", item.get("quantity")),
            )
            for item in items
        ),
    )


def _transaction(value: dict[str, Any]) -> etree._Element:
    seller = value.get("seller")
    location = value.get("transactionLocation")
    return element(
        "transaction",
        _count("transactionNumber", value["transactionNumber"]),
        _enum("transactionType", value["transactionType"]),
        leaf("transactionTimestamp", value["transactionTimestamp"]),
        leaf("transactionAddress", value.get("transactionAddress")),
        *(
            element(
                "item",
                leaf("code", item["code"]),
                leaf("name", item["name"]),
                _amount("amount", item["transactionAmount"]),
                _amount("fullAmount", item["transactionFullAmount"]),
                _count("quantity", item["transactionQuantity"]),
            )
            for item in value.get("transactionGoodsWorksServices") or []
        ),
        None
        if seller is None
        else element("seller", leaf("fullName", seller["fullName"]), leaf("INN", seller["INN"]), leaf("KPP", seller.get("KPP"))),
        None
        if location is None
        else element(
            "location",
            leaf("address", location.get("address")),
            leaf("website", location.get("website")),
            *(
                element(name, text=str(Decimal(str(location[name]))))
                for name in ("latitude", "longitude")
                if location.get(name) is not None
            ),
        ),
        _amount("totalAmount", value["transactionTotalAmount"]),
        _amount("totalFullAmount", value["transactionTotalFullAmount"]),
    )


def certificate(value: dict[str, Any], name: str = "certificate") -> etree._Element:
    """An ``eCertificate`` as a Certificate element."""
    status = value["currentStatus"]
    actual_amount = value.get("certificateActualAmount")
    actual_quantity = value.get("certificateActualQuantity")
    # A zero balance cannot be sent (minimum 1, spec open question 15): absent where the limit exists means 0.
    if actual_amount is None and value.get("certificateAmount") is not None:
        actual_amount = 0
    if actual_quantity is None and value.get("certificateQuantity") is not None:
        actual_quantity = 0
    transactions = value.get("usageTransactions")
    return element(
        name,
        leaf("factAssignmentUuid", value["factAssignmentUuid"]),
        leaf("certificateNumber", value["certificateNumber"]),
        leaf("startDate", value["startDate"]),
        leaf("endDate", value.get("endDate")),
        _enum("program", value["program"], _program),
        _amount("certificateAmount", value.get("certificateAmount")),
        _count("certificateQuantity", value.get("certificateQuantity")),
        _goods_list(value["goodsWorksServices"]),
        _enum("usageStatus", value["usageStatus"]),
        element(
            "currentStatus",
            _enum("statusCode", status["statusCode"]),
            _enum("statusReason", status["statusReason"]),
            leaf("statusDateTime", status["statusDateTime"]),
        ),
        _enum("activationSuspensionReason", value.get("activationSuspensionReasons")),
        _amount("certificateActualAmount", actual_amount),
        _count("certificateActualQuantity", actual_quantity),
        None if not transactions else element("usageTransactions", *(_transaction(t) for t in transactions)),
        element(
            "balances",
            *(
                element(
                    "balance",
                    leaf("code", balance["code"]),
                    _amount("actualAmount", balance.get("actualAmount")),
                    _count("actualQuantity", balance.get("actualQuantity")),
                )
                for balance in value.get("eCertificateBalance") or []
            ),
        ),
    )


def record_result(value: dict[str, Any]) -> etree._Element:
    """A result record (``eCertificate*ResponseRecord`` or a notification protocol) as a RecordResult."""
    protocol = value["protocol"]
    messages = protocol.get("processingProtocol") or []
    return element(
        "record",
        _count("recordId", value["recordId"]),
        leaf("processedSuccessfully", _boolean(protocol["isProcessedSuccessfully"])),
        leaf("receivingTime", protocol["receivingTime"]),
        leaf("processingTime", protocol["processingTime"]),
        *(
            element(
                "message",
                leaf("type", {1: "error", 2: "warning"}[_integer(message["MessageType"])]),
                leaf("ruleCode", message.get("ruleCode")),
                leaf("text", message["MessageMetadata"]),
            )
            for message in messages
        ),
        leaf("factAssignmentUuid", value.get("factAssignmentUuid")),
        None if value.get("eCertificate") is None else certificate(value["eCertificate"]),
    )


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value
