"""Translation between the adapter's XML payload (``xsd/adapters/payments.xsd``) and protocol v20's JSON.

Requests are read from ``data`` after schema validation, so only what the schema cannot say is checked here.
Answers are built from the backend's JSON; anything there that is not what the protocol allows raises
PROVIDER_RESPONSE_INVALID (and the finished answer is checked against the schema once more by the adapter).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from gateway.adapters.payments.jsonwire import money
from gateway.errors import ErrorCode, GatewayError

NS = "urn:gateway:adapters:payments"
# The spec's services key has a Cyrillic "с" (U+0441); a real server may send either spelling (spec §12).
SERVICES_KEYS = ("services", "servi\u0441es")
SCHEME_BY_TYPE = {0: "simple", 1: "complex", 2: "withChoice"}
MAX_AGENT_TRANSACTION_ID = 10**18 - 1
_PAYMENT_KEY_DOMAIN = b"gateway:payments:v20:agentTransactionId:"


def q(local: str) -> str:
    """The qualified name of ``local`` in the payload namespace."""
    return f"{{{NS}}}{local}"


def child_text(parent: etree._Element, local: str) -> str | None:
    """Text of the first child ``local`` (in the payload namespace), or None."""
    element = parent.find(q(local))
    return None if element is None else (element.text or "")


def derive_agent_transaction_id(payment_key: str) -> int:
    """The agentTransactionId for ``payment_key``: a deterministic 1..10^18−1 integer, so the same initiator
    payment (a resent message) always reuses the same id and the processing centre replays instead of paying
    again. Collisions between distinct keys have probability ~n²/2·10^18."""
    digest = hashlib.sha256(_PAYMENT_KEY_DOMAIN + payment_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:16], "big") % MAX_AGENT_TRANSACTION_ID + 1


def agent_transaction_id(request: etree._Element) -> int:
    """The request's own agentTransactionId, or the one derived from its paymentKey."""
    explicit = child_text(request, "agentTransactionId")
    if explicit is not None:
        return int(explicit)
    return derive_agent_transaction_id(child_text(request, "paymentKey") or "")


def _malformed(text: str) -> GatewayError:
    return GatewayError(ErrorCode.MALFORMED_MESSAGE, f"data: {text}")


def _extras(request: etree._Element, contract_id: str | None) -> dict[str, str]:
    extras: dict[str, str] = {}
    if contract_id is not None:
        extras["contractId"] = contract_id
    for element in request.findall(q("extra")):
        name = element.get("name", "")
        if name in extras:
            raise _malformed(f"extra {name!r} given twice")
        extras[name] = element.text or ""
    return extras


def _identity(request: etree._Element, atid: int) -> dict[str, Any]:
    return {
        "serviceId": child_text(request, "serviceId"),
        "account": child_text(request, "account"),
        "agentTransactionId": atid,
        "agentTransactionDate": child_text(request, "agentTransactionDate"),
    }


def _amount(request: etree._Element, local: str) -> Decimal | None:
    text = child_text(request, local)
    return None if text is None else money(Decimal(text))


def _payer(body: dict[str, Any], request: etree._Element) -> None:
    for local in ("identityCard", "fullName"):
        value = child_text(request, local)
        if value is not None:
            body[local] = value


def check_body(request: etree._Element, atid: int) -> dict[str, Any]:
    """The JSON body of ``check`` for a CheckRequest (field order as in the spec's examples)."""
    body = _identity(request, atid)
    for local in ("amountTo", "amountFrom"):
        amount = _amount(request, local)
        if amount is not None:
            body[local] = amount
    extras = _extras(request, None)
    if extras:
        body["extras"] = extras
    _payer(body, request)
    return body


def pay_body(request: etree._Element, atid: int) -> dict[str, Any]:
    """The JSON body of ``pay`` for a PayRequest; the receipt services of a complex-scheme payment must add up
    to amountTo (spec §8.5.4), which the schema cannot say."""
    body = _identity(request, atid)
    amount_to = _amount(request, "amountTo")
    body["amountTo"] = amount_to
    amount_from = _amount(request, "amountFrom")
    if amount_from is not None:
        body["amountFrom"] = amount_from
    extras = _extras(request, child_text(request, "contractId"))
    if extras:
        body["extras"] = extras
    services = []
    for element in request.findall(q("extraService")):
        item: dict[str, Any] = {"subServiceId": child_text(element, "subServiceId")}
        last_count = child_text(element, "lastCount")
        if last_count is not None:
            item["lastCount"] = last_count
        item["amount"] = money(Decimal(child_text(element, "amount") or "0"))
        services.append(item)
    if services:
        total = sum((item["amount"] for item in services), Decimal("0.00"))
        if total != amount_to:
            raise _malformed(f"extraService amounts add up to {total}, not amountTo {amount_to}")
        body["extraServices"] = services
    _payer(body, request)
    return body


# ----- answers -----


def invalid(text: str) -> GatewayError:
    """PROVIDER_RESPONSE_INVALID saying what was wrong with the backend's answer."""
    return GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, text[:500])


def _add(parent: etree._Element, local: str, value: Any) -> None:
    if value is None:
        return
    etree.SubElement(parent, q(local)).text = _lexical(local, value)


def _lexical(local: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    raise invalid(f"{local}: unexpected {type(value).__name__}")


def decimal_field(source: Mapping[str, Any], key: str) -> Decimal | None:
    """A number the backend sent as a JSON number or a numeric string, as a Decimal (None when absent)."""
    value = source.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise invalid(f"{key}: not a number")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise invalid(f"{key}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise invalid(f"{key}: not a finite number")
    return number


def int_field(source: Mapping[str, Any], key: str, required: bool = False) -> int | None:
    """An integer field (never a bool, never a fraction)."""
    value = source.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{key}: {value!r} is not an integer")
    return value


def str_field(source: Mapping[str, Any], key: str) -> str | None:
    """A string field, or None when absent."""
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key}: not a string")
    return value


def bool_field(source: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field, or None when absent."""
    value = source.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(f"{key}: not a boolean")


def _compact_date(value: str | None, key: str) -> str | None:
    """``yyyyMMddHHmmss`` (contracts and invoices, spec §11.13) as an xs:dateTime."""
    if value is None or value == "":
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").isoformat()
    except ValueError as exc:
        raise invalid(f"{key}: {value!r} is not yyyyMMddHHmmss") from exc


def _processing_date(value: str | None, key: str) -> str | None:
    """``YYYY-MM-DDThh:mm:ss[.fff]`` (transactionDate, statusDate) as an xs:dateTime, zone-less as sent."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"{key}: {value!r} is not a date-time") from exc
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


def _objects(source: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = source.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid(f"{key}: not an array of objects")
    return value


def _field_descriptions(parent: etree._Element, local: str, items: list[Mapping[str, Any]]) -> None:
    for item in items:
        element = etree.SubElement(parent, q(local))
        _add(element, "name", str_field(item, "name") or "")
        _add(element, "required", bool_field(item, "required"))
        _add(element, "title", str_field(item, "title"))
        _add(element, "regexp", str_field(item, "regexp"))


def _service(parent: etree._Element, item: Mapping[str, Any]) -> None:
    element = etree.SubElement(parent, q("service"))
    _add(element, "serviceId", str_field(item, "serviceId"))
    service_type = int_field(item, "type", required=True)
    _add(element, "type", service_type)
    _add(element, "scheme", SCHEME_BY_TYPE.get(service_type))
    _add(element, "name", str_field(item, "name"))
    _add(element, "group", str_field(item, "group"))
    _add(element, "fixedPayment", bool_field(item, "fixedPayment"))
    _add(element, "country", str_field(item, "country"))
    _field_descriptions(element, "input", _objects(item, "inputs"))
    _field_descriptions(element, "display", _objects(item, "displays"))


def service_list(reply: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The services array under either spelling of its key."""
    for key in SERVICES_KEYS:
        if key in reply:
            return _objects(reply, key)
    raise invalid("no services array in the answer")


def services_answer(reply: Mapping[str, Any], local: str, only: str | None = None) -> etree._Element:
    """ServicesResponse (every service) or ServiceResponse (the one asked for)."""
    answer = etree.Element(q(local), nsmap={None: NS})
    items = service_list(reply)
    if only is not None:
        items = [item for item in items if item.get("serviceId") == only][:1]
        if not items:
            raise invalid(f"the answer does not describe service {only!r}")
    for item in items:
        _service(answer, item)
    return answer


def balance_answer(reply: Mapping[str, Any]) -> etree._Element:
    """BalanceResponse from the ``agent`` object (or flat fields, as the spec's table lists them)."""
    agent = reply.get("agent", reply)
    if not isinstance(agent, dict):
        raise invalid("agent: not an object")
    answer = etree.Element(q("BalanceResponse"), nsmap={None: NS})
    _add(answer, "agentId", int_field(agent, "agentId", required=True))
    _add(answer, "agentName", str_field(agent, "agentName"))
    _add(answer, "balance", decimal_field(agent, "balance"))
    _add(answer, "overdraft", decimal_field(agent, "overdraft"))
    _add(answer, "notification", decimal_field(agent, "notification"))
    _add(answer, "currency", str_field(agent, "currency"))
    return answer


def operator_answer(reply: Mapping[str, Any], phone: str, result: int) -> etree._Element:
    """OperatorByPhoneResponse; serviceId only when the operator was determined."""
    answer = etree.Element(q("OperatorByPhoneResponse"), nsmap={None: NS})
    _add(answer, "phoneNumber", phone)
    _add(answer, "result", result)
    _add(answer, "resultMessage", str_field(reply, "resultMessage"))
    _add(answer, "serviceId", str_field(reply, "serviceId") if result == 0 else None)
    return answer


def _header(answer: etree._Element, atid: int, reply: Mapping[str, Any] | None, final: bool, note: str | None) -> None:
    _add(answer, "agentTransactionId", atid)
    if reply is None:
        _add(answer, "resultMessage", note)
    else:
        _add(answer, "transactionId", int_field(reply, "transactionId"))
        _add(answer, "result", int_field(reply, "result"))
        _add(answer, "resultMessage", str_field(reply, "resultMessage"))
    _add(answer, "final", final)


def pay_answer(atid: int, reply: Mapping[str, Any] | None, final: bool, note: str | None = None) -> etree._Element:
    """PayResponse; ``reply`` is None while pending for want of any usable answer (``note`` says why)."""
    answer = etree.Element(q("PayResponse"), nsmap={None: NS})
    _header(answer, atid, reply, final, note)
    if reply is not None:
        _add(answer, "transactionDate", _processing_date(str_field(reply, "transactionDate"), "transactionDate"))
        _add(answer, "statusDate", _processing_date(str_field(reply, "statusDate"), "statusDate"))
    return answer


def check_answer(atid: int, reply: Mapping[str, Any] | None, final: bool, note: str | None = None) -> etree._Element:
    """CheckResponse with the scheme-specific part, the scheme told by the answer's shape (spec open question 3:
    ``contracts`` → with choice, ``invoice`` → complex, otherwise simple)."""
    answer = etree.Element(q("CheckResponse"), nsmap={None: NS})
    _header(answer, atid, reply, final, note)
    if reply is None or not final:
        return answer
    invoice = reply.get("invoice")
    if invoice is not None and not isinstance(invoice, dict):
        raise invalid("invoice: not an object")
    contracts = _objects(reply, "contracts")
    _add(answer, "scheme", "complex" if invoice is not None else "withChoice" if contracts else "simple")
    displays = reply.get("displays") or {}
    if not isinstance(displays, dict):
        raise invalid("displays: not an object")
    for name, value in displays.items():
        if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
            raise invalid(f"displays.{name}: not a value")
        etree.SubElement(answer, q("display"), name=str(name)).text = _lexical("display", value)
    for item in contracts:
        _contract(answer, item)
    for item in _objects(invoice or {}, "invoices"):
        _invoice(answer, item)
    conversion = {key: reply.get(key) for key in ("currencyRate", "rate", "finalAmount", "currency")}
    if any(value is not None for value in conversion.values()):
        element = etree.SubElement(answer, q("conversion"))
        _add(element, "currencyRate", str_field(reply, "currencyRate"))
        _add(element, "rate", decimal_field(reply, "rate"))
        _add(element, "finalAmount", decimal_field(reply, "finalAmount"))
        _add(element, "currency", str_field(reply, "currency"))
    return answer


def _contract(parent: etree._Element, item: Mapping[str, Any]) -> None:
    element = etree.SubElement(parent, q("contract"))
    _add(element, "contractId", str_field(item, "contractId"))
    _add(element, "name", str_field(item, "name"))
    _add(element, "contractNumber", str_field(item, "contractNumber"))
    _add(element, "contractSum", decimal_field(item, "contractSum"))
    _add(element, "contractDate", _compact_date(str_field(item, "contractDate"), "contractDate"))


def _invoice(parent: etree._Element, item: Mapping[str, Any]) -> None:
    element = etree.SubElement(parent, q("invoice"))
    _add(element, "invoiceId", str_field(item, "invoiceId"))
    _add(element, "formedDate", _compact_date(str_field(item, "formedDate"), "formedDate"))
    _add(element, "expireDate", _compact_date(str_field(item, "expireDate"), "expireDate"))
    _add(element, "clientName", str_field(item, "clientName"))
    _add(element, "clientAddress", str_field(item, "clientAddress"))
    for service in _objects(item, "services"):
        data = service.get("data") or {}
        if not isinstance(data, dict):
            raise invalid("invoice services[].data: not an object")
        sub = etree.SubElement(element, q("service"))
        _add(sub, "subServiceId", str_field(service, "subServiceId"))
        _add(sub, "subServiceName", str_field(service, "subServiceName"))
        for key in ("paySum", "tariff", "minSum", "maxSum"):
            _add(sub, key, decimal_field(data, key))
        _add(sub, "debtInfo", str_field(data, "debtInfo"))
        _add(sub, "isMeter", bool_field(data, "isMeter"))
        for key in ("prevCount", "lastCount", "si", "comment"):
            _add(sub, key, str_field(data, key))
