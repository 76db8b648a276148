"""A payment processing centre speaking protocol API v20 to an Agent (JSON over ``POST /api/v20/<method>``):
``services``, ``service``, ``balance``, ``check``, ``pay`` and ``operatorByPhone``, with authorisation, the
idempotency rules of spec §6 and the finality rules of §5.

Seed data (``payments_seed.py``), deterministic:

* Agent 4 "Наименоване Агента", balance 509455.9000 KZT, overdraft 0.0000 (a pay that would take the balance
  below −overdraft answers 220, stays pending while repeats find no funds, and after
  ``insufficient_funds_polls`` repeats ends in 250; :meth:`PaymentsEmulator.top_up` lets it succeed instead).
* Tokens: ``demo-agent-token`` (confirmed), ``pending-agent-token`` (awaiting confirmation), ``revoked-agent-token``
  (revoked); either ``Authorization: Bearer <token>`` or the bare token in the ``token_header`` option's header.
  A refused token answers HTTP 401, a disallowed address (``allowed_ips``) HTTP 403, both with result 300.
* Services: ``P1011`` Beeline (simple, account ``^\\d{10}$``, any number exists, amounts 100.00..100000.00 else
  241/242), ``P1012`` Herbalife (simple with displays; account 1234567890, extra ``account1`` or
  ``ev_account1`` required, pay must be the displayed fixedAmount 20000.00), ``P0005`` Alseko (complex; account
  1000000001 has the spec's invoice, 1000000002 an invoice whose item 36 allows 50..500 only), ``P0006`` XXX bank
  (with choice; IIN 931002451325 has the spec's three contracts), ``P2001`` (simple, converts to USD in check),
  ``P0155`` (acceptance prohibited: 155). Any other serviceId: 130.
* Scripted P1011 accounts: 7770000005 → 5, 7770000007 → 7, 7770000008 → 8, 7770000300 → 300,
  7770000153 → pay 153 (``scripted_polls`` times) then 0, 7770000001 → pay 1 then 300. An account failing the
  regexp → 4; amountFrom − amountTo above 500.00 → 255 (non-final), then 300.
* A malformed body, a missing field, a bad contractId or receipt item, receipt amounts not adding up to
  amountTo → 202; a changed body under a pending payment's agentTransactionId → 202 (the payment goes on);
  a changed body under a final one → 215 (or the previous result, ``changed_body_on_final="replay"``).
* operatorByPhone: 7012345678 (ported) and prefixes 777, 705, 771 → P1011; other 10-digit numbers → 5;
  anything else → 4.
* transactionId values start at 900000000000000001 (18 digits, beyond a double's exact range).

Switches (:class:`PaymentsSwitches`), settable from Python (``emulator.switches.x = …`` or
:meth:`PaymentsEmulator.set_switches`) and over HTTP (``POST /_emulator/switches`` with a JSON object;
``GET /_emulator/switches`` reads them). ``GET /_emulator/state`` shows the balance and the transactions;
``POST /_emulator/top-up`` with ``{"amount": "100.00"}`` credits the balance.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulators import payments_seed as seed
from emulators.http import reply
from gateway.adapters.payments import codes, jsonwire

JSON = "application/json; charset=utf-8"
API_PREFIX = "/api/v20/"
CYRILLIC_SERVICES_KEY = "servi\u0441es"
_AGENT_DATE = "%Y-%m-%dT%H:%M:%S"
_AMOUNT_KEYS = ("amountTo", "amountFrom")


class PaymentsSwitches(BaseModel):
    """Runtime behaviour; every field validated on assignment, so a wrong value fails loudly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    down: bool = False
    down_mode: Literal["503", "drop"] = "503"  # "drop": the connection closes before the answer is complete
    non_final_polls: int = Field(default=0, ge=0, le=1000)  # every new pay answers non-final this many times
    non_final_code: Literal[1, 153, 255] = 1
    non_final_outcome: Literal[0, 300] = 0
    check_non_final_polls: int = Field(default=0, ge=0, le=1000)  # the same for every new check (code 1)
    scripted_polls: int = Field(default=2, ge=1, le=1000)  # non-final answers of scripted accounts and 255
    insufficient_funds_polls: int = Field(default=3, ge=1, le=1000)  # repeats answering 220 before 250
    lose_answers: int = Field(default=0, ge=0, le=1000)  # next pay requests processed, answered HTTP 503
    services_key: Literal["services", "servi\u0441es"] = "services"
    strict_two_phase: bool = False  # pay without a check under its agentTransactionId → 202
    changed_body_on_final: Literal["215", "replay"] = "215"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived (the token is the emulator's own test credential)."""

    method: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Transaction:
    """A check or a pay kept under (method, agentTransactionId); the Agent is always the seeded one."""

    method: str
    agent_transaction_id: int
    transaction_id: int
    request: dict[str, Any]  # normalised: amounts as Decimals, so 200 and 200.00 are the same body
    answer: dict[str, Any]  # the current answer (final, or the non-final one)
    pending_left: int = 0  # non-final answers still to give before finalising
    outcome: int = codes.SUCCESS  # what a pending payment becomes
    amount: Decimal = Decimal("0")
    funds_polls: int = 0
    held_answer: dict[str, Any] | None = None  # a pending check's answer, given once it is final

    @property
    def final(self) -> bool:
        return codes.is_final(int(self.answer["result"]))


class _Refusal(Exception):
    """A request refused with a protocol result code."""

    def __init__(self, result: int, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


@dataclass
class PaymentsEmulator:
    """The WSGI processing centre; ``received`` holds every API request, ``transactions`` its state."""

    token_header: str | None = None
    allowed_ips: tuple[str, ...] = ()
    allow_ip_without_token: bool = False
    switches: PaymentsSwitches = field(default_factory=PaymentsSwitches)
    tokens: dict[str, str] = field(default_factory=lambda: dict(seed.SEED_TOKENS))
    balance: Decimal = seed.SEED_BALANCE
    overdraft: Decimal = seed.SEED_OVERDRAFT
    services: dict[str, seed.ServiceRule] = field(default_factory=seed.seed_services)
    received: list[ReceivedRequest] = field(default_factory=list)
    transactions: dict[tuple[str, int], Transaction] = field(default_factory=dict)
    _next_transaction_id: int = seed.FIRST_TRANSACTION_ID
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ----- Python steering -----

    def set_switches(self, **values: Any) -> PaymentsSwitches:
        """Change several switches at once (all or none: the new set is validated first)."""
        with self._lock:
            self.switches = PaymentsSwitches.model_validate({**self.switches.model_dump(), **values})
            return self.switches

    def top_up(self, amount: Decimal) -> Decimal:
        """Credit the Agent's balance; returns the new balance."""
        with self._lock:
            self.balance += amount
            return self.balance

    def payments(self) -> list[Transaction]:
        """The pay transactions that ended in success (spec §6: never two for one agentTransactionId)."""
        with self._lock:
            return [t for t in self.transactions.values() if t.method == "pay" and t.answer["result"] == codes.SUCCESS]

    def requests_to(self, method: str) -> list[ReceivedRequest]:
        """The requests received for ``method``, in order."""
        with self._lock:
            return [r for r in self.received if r.method == method]

    # ----- WSGI -----

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        verb = environ.get("REQUEST_METHOD", "GET")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.startswith("/_emulator/"):
            return self._control(path, verb, body, start_response)
        if not path.startswith(API_PREFIX):
            return _json(start_response, 404, {"result": codes.OTHER_ERROR, "resultMessage": "no such path"})
        method = path[len(API_PREFIX):]
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        with self._lock:
            self.received.append(ReceivedRequest(method, headers, body))
            switches = self.switches
        if switches.delay_seconds:
            time.sleep(switches.delay_seconds)
        if switches.down:
            return _unavailable(start_response, switches.down_mode)
        if verb != "POST":
            return _json(start_response, 405, {"result": codes.OTHER_ERROR, "resultMessage": "all requests use POST"})
        denial = self._authorise(headers, environ.get("REMOTE_ADDR", ""))
        if denial is not None:
            status, message = denial
            return _json(start_response, status, {"result": codes.OTHER_ERROR, "resultMessage": message})
        handler = {
            "services": self._services,
            "service": self._service,
            "balance": self._balance,
            "check": self._check,
            "pay": self._pay,
            "operatorByPhone": self._operator_by_phone,
        }.get(method)
        if handler is None:
            return _json(start_response, 404, {"result": codes.OTHER_ERROR, "resultMessage": f"no method {method!r}"})
        with self._lock:
            answer = handler(body, headers.get("Content-Type", ""))
            lose = method == "pay" and self.switches.lose_answers > 0
            if lose:
                self.switches.lose_answers -= 1
        if lose:
            return _unavailable(start_response, "503")
        return _json(start_response, 200, answer)

    def _authorise(self, headers: Mapping[str, str], address: str) -> tuple[int, str] | None:
        if self.allowed_ips and not _address_allowed(address, self.allowed_ips):
            return 403, f"requests from {address} are not accepted"
        token = None
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token = authorization[len("Bearer "):].strip()
        elif self.token_header is not None:
            token = headers.get(self.token_header.title())
        if token is None:
            if self.allowed_ips and self.allow_ip_without_token:
                return None
            return 401, "token required"
        status = next((s for t, s in self.tokens.items() if hmac.compare_digest(t.encode(), token.encode())), None)
        if status == "confirmed":
            return None
        return 401, {"pending": "token awaiting confirmation", "revoked": "token revoked"}.get(status or "", "unknown token")

    # ----- methods -----

    def _services(self, body: bytes, content_type: str) -> dict[str, Any]:
        items = [dict(rule.catalogue) for rule in self.services.values()]
        return {"result": codes.SUCCESS, "resultMessage": "OK", self.switches.services_key: items}

    def _service(self, body: bytes, content_type: str) -> dict[str, Any]:
        try:
            request = _parse_object(body, content_type)
            service_id = _required_str(request, "serviceId")
        except _Refusal as refusal:
            return _refused(refusal)
        rule = self.services.get(service_id)
        if rule is None:
            return _refused(_Refusal(codes.SERVICE_NOT_IMPLEMENTED, f"service {service_id} is not implemented"))
        return {"result": codes.SUCCESS, "resultMessage": "OK", self.switches.services_key: [dict(rule.catalogue)]}

    def _balance(self, body: bytes, content_type: str) -> dict[str, Any]:
        four = Decimal("0.0001")
        agent = {
            "agentId": seed.AGENT_ID,
            "agentName": seed.AGENT_NAME,
            "balance": self.balance.quantize(four),
            "overdraft": self.overdraft.quantize(four),
            "notification": Decimal("0.0000"),
            "currency": seed.CURRENCY,
        }
        return {"result": codes.SUCCESS, "resultMessage": "Успешно", "agent": agent}

    def _operator_by_phone(self, body: bytes, content_type: str) -> dict[str, Any]:
        try:
            phone = _required_str(_parse_object(body, content_type), "phoneNumber")
        except _Refusal as refusal:
            return _refused(refusal)
        if not re.fullmatch(r"\d{10}", phone):
            return _refused(_Refusal(codes.BAD_ACCOUNT_FORMAT, "phone number must be 10 digits"))
        service_id = seed.MNP_PORTED.get(phone) or seed.MNP_PREFIXES.get(phone[:3])
        if service_id is None:
            return _refused(_Refusal(codes.ACCOUNT_NOT_FOUND, "operator not determined"))
        return {"result": codes.SUCCESS, "resultMessage": "ok", "serviceId": service_id}

    def _check(self, body: bytes, content_type: str) -> dict[str, Any]:
        try:
            request = _payment_request(body, content_type, amount_required=False)
        except _Refusal as refusal:
            return _refused(refusal)
        atid = request["agentTransactionId"]
        previous = self.transactions.get(("check", atid))
        if previous is not None:
            # A repeated check replays the previous one (spec §6); a pending one moves on as a repeat.
            return self._repeat(previous)
        transaction = Transaction("check", atid, self._allocate(atid), request, {})
        try:
            final = self._check_payload(request)
            final.update(result=codes.SUCCESS, resultMessage="ok")
        except _Refusal as refusal:
            final = {"result": refusal.result, "resultMessage": refusal.message}
        final = {**final, "transactionId": transaction.transaction_id, "agentTransactionId": atid}
        if final["result"] == codes.SUCCESS and self.switches.check_non_final_polls:
            transaction.held_answer = final
            self._hold(transaction, codes.IN_PROGRESS, self.switches.check_non_final_polls, codes.SUCCESS)
        else:
            transaction.answer = final
        self.transactions[("check", atid)] = transaction
        return transaction.answer

    def _pay(self, body: bytes, content_type: str) -> dict[str, Any]:
        try:
            request = _payment_request(body, content_type, amount_required=True)
        except _Refusal as refusal:
            return _refused(refusal)
        atid = request["agentTransactionId"]
        previous = self.transactions.get(("pay", atid))
        if previous is not None:
            if previous.request == request:
                return self._repeat(previous)
            if not previous.final:
                # Spec §5/§6: the pending payment goes on unchanged; this request is a data error.
                return _refused(_Refusal(codes.REQUEST_DATA_ERROR, "request differs from the pending payment"), atid)
            if self.switches.changed_body_on_final == "replay":
                return previous.answer
            return _refused(_Refusal(codes.DUPLICATE_TRANSACTION, "transaction with this number exists"), atid)
        if self.switches.strict_two_phase and ("check", atid) not in self.transactions:
            return _refused(_Refusal(codes.REQUEST_DATA_ERROR, "pay without check"), atid)
        try:
            self._check_payload(request)
            self._check_scheme(request)
        except _Refusal as refusal:
            if refusal.result == codes.REQUEST_DATA_ERROR:
                # Not kept: a 202 on a first request leaves the number free (the same body gets 202 again).
                return _refused(refusal, atid)
            transaction = Transaction("pay", atid, self._allocate(atid), request, {})
            transaction.answer = {"result": refusal.result, "resultMessage": refusal.message,
                                  "transactionId": transaction.transaction_id, "agentTransactionId": atid}
            self.transactions[("pay", atid)] = transaction
            return transaction.answer
        transaction = Transaction("pay", atid, self._allocate(atid), request, {}, amount=request["amountTo"])
        self.transactions[("pay", atid)] = transaction
        self._start_payment(transaction)
        return transaction.answer

    # ----- payments' state machine -----

    def _start_payment(self, transaction: Transaction) -> None:
        request = transaction.request
        script = self._account(request)
        commission = request.get("amountFrom", request["amountTo"]) - request["amountTo"]
        if commission > seed.MAX_COMMISSION:
            self._hold(transaction, codes.BAD_COMMISSION, self.switches.scripted_polls, codes.OTHER_ERROR)
        elif script is not None and script.pending_code is not None:
            self._hold(transaction, script.pending_code, self.switches.scripted_polls, script.pending_outcome)
        elif self.switches.non_final_polls:
            self._hold(transaction, self.switches.non_final_code, self.switches.non_final_polls,
                       self.switches.non_final_outcome)
        else:
            self._finalise(transaction, codes.SUCCESS)

    def _hold(self, transaction: Transaction, code: int, answers: int, outcome: int) -> None:
        """Answer ``code`` now and on the next ``answers − 1`` identical repeats, then finalise to ``outcome``."""
        transaction.pending_left = answers - 1
        transaction.outcome = outcome
        transaction.answer = _pending_answer(transaction, code)

    def _repeat(self, transaction: Transaction) -> dict[str, Any]:
        """An identical repeat: the current state, advancing a pending one (spec §6)."""
        if transaction.final:
            return transaction.answer
        if transaction.pending_left > 0:
            transaction.pending_left -= 1
            return transaction.answer
        if transaction.held_answer is not None:
            transaction.answer, transaction.held_answer = transaction.held_answer, None
        elif transaction.answer["result"] == codes.INSUFFICIENT_FUNDS:
            transaction.funds_polls += 1
            if self._affordable(transaction.amount):
                self._finalise(transaction, codes.SUCCESS)
            elif transaction.funds_polls >= self.switches.insufficient_funds_polls:
                self._finalise(transaction, codes.BALANCE_NOT_TOPPED_UP)
        else:
            self._finalise(transaction, transaction.outcome)
        return transaction.answer

    def _finalise(self, transaction: Transaction, result: int) -> None:
        if result == codes.SUCCESS and not self._affordable(transaction.amount):
            transaction.answer = _pending_answer(transaction, codes.INSUFFICIENT_FUNDS)
            return
        now = datetime.now().isoformat(timespec="milliseconds")
        answer: dict[str, Any] = {
            "result": result,
            "resultMessage": "Успешно" if result == codes.SUCCESS else codes.RESULT_CODES[result].meaning,
            "transactionId": transaction.transaction_id,
        }
        if result == codes.SUCCESS:
            self.balance -= transaction.amount
            answer.update(transactionDate=now, statusDate=now)
        answer["agentTransactionId"] = transaction.agent_transaction_id
        transaction.answer = answer

    def _affordable(self, amount: Decimal) -> bool:
        return self.balance - amount >= -self.overdraft

    def _allocate(self, atid: int) -> int:
        """The check's transactionId for the pay that follows it (spec open question 4), else a new one."""
        check = self.transactions.get(("check", atid))
        if check is not None:
            return check.transaction_id
        allocated = self._next_transaction_id
        self._next_transaction_id += 1
        return allocated

    # ----- validation shared by check and pay -----

    def _rule(self, request: Mapping[str, Any]) -> seed.ServiceRule:
        rule = self.services.get(request["serviceId"])
        if rule is None:
            raise _Refusal(codes.SERVICE_NOT_IMPLEMENTED, "work with this service is not implemented")
        if rule.refusal is not None:
            raise _Refusal(rule.refusal, codes.RESULT_CODES[rule.refusal].meaning)
        return rule

    def _account(self, request: Mapping[str, Any]) -> seed.AccountScript | None:
        return self._rule(request).accounts.get(request["account"])

    def _check_payload(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a check or pay (spec §10.2.3); the scheme-specific part of a successful check's answer."""
        rule = self._rule(request)
        account = request["account"]
        if not re.search(rule.account_regexp, account):
            raise _Refusal(codes.BAD_ACCOUNT_FORMAT, "invalid account format")
        script = rule.accounts.get(account)
        if script is None and not rule.any_account:
            raise _Refusal(codes.ACCOUNT_NOT_FOUND, "account not found")
        if script is not None and script.refusal is not None:
            raise _Refusal(script.refusal, codes.RESULT_CODES[script.refusal].meaning)
        extras = request.get("extras", {})
        for name in rule.required_extras:
            if not extras.get(name) and not extras.get(f"ev_{name}"):
                raise _Refusal(codes.REQUEST_DATA_ERROR, f"extras.{name} is required")
        amount = request.get("amountTo")
        if amount is not None and rule.min_amount is not None and amount < rule.min_amount:
            raise _Refusal(codes.AMOUNT_TOO_SMALL, "amount too small")
        if amount is not None and rule.max_amount is not None and amount > rule.max_amount:
            raise _Refusal(codes.AMOUNT_TOO_LARGE, "amount too large")
        payload: dict[str, Any] = {}
        if script is not None and script.displays:
            payload["displays"] = dict(script.displays)
        if script is not None and script.contracts:
            payload["contracts"] = [dict(c) for c in script.contracts]
        if script is not None and script.invoices:
            payload["invoice"] = {"invoices": [dict(i) for i in script.invoices]}
        if rule.rate is not None and amount is not None:
            payload.update(
                currencyRate=f"Курс конвертации KZT/{rule.provider_currency} {rule.rate.quantize(Decimal('0.0001'))}",
                rate=rule.rate,
                finalAmount=(amount * rule.rate).quantize(Decimal("0.01")),
                currency=rule.provider_currency,
            )
        return payload

    def _check_scheme(self, request: Mapping[str, Any]) -> None:
        """Pay's scheme rules (spec §10.2.4.3): the chosen contract, the receipt items and their limits."""
        rule = self._rule(request)
        script = rule.accounts.get(request["account"])
        extras = request.get("extras", {})
        fixed = script.displays.get("fixedAmount") if script is not None else None
        if fixed is not None and request["amountTo"] != Decimal(fixed):
            raise _Refusal(codes.REQUEST_DATA_ERROR, f"amountTo must be the fixed amount {fixed}")
        if rule.scheme == "withChoice":
            contract_ids = {c["contractId"] for c in script.contracts} if script is not None else set()
            if extras.get("contractId") not in contract_ids:
                raise _Refusal(codes.REQUEST_DATA_ERROR, "extras.contractId is not one of the check's contracts")
        if rule.scheme == "complex":
            self._check_receipt(request, script)

    @staticmethod
    def _check_receipt(request: Mapping[str, Any], script: seed.AccountScript | None) -> None:
        items = request.get("extraServices")
        if not items:
            raise _Refusal(codes.REQUEST_DATA_ERROR, "extraServices is required")
        invoice_items = {s["subServiceId"]: s["data"] for i in (script.invoices if script else ()) for s in i["services"]}
        total = Decimal("0")
        for item in items:
            data = invoice_items.get(item["subServiceId"])
            if data is None:
                raise _Refusal(codes.REQUEST_DATA_ERROR, f"no receipt item {item['subServiceId']}")
            amount = item["amount"]
            total += amount
            if data["minSum"] and amount < data["minSum"]:
                raise _Refusal(codes.AMOUNT_TOO_SMALL, f"item {item['subServiceId']}: amount too small")
            if data["maxSum"] and amount > data["maxSum"]:
                raise _Refusal(codes.AMOUNT_TOO_LARGE, f"item {item['subServiceId']}: amount too large")
        if total != request["amountTo"]:
            raise _Refusal(codes.REQUEST_DATA_ERROR, "extraServices amounts do not add up to amountTo")

    # ----- control endpoints -----

    def _control(self, path: str, verb: str, body: bytes, start_response: Any) -> list[bytes]:
        if path == "/_emulator/switches" and verb == "GET":
            return _json(start_response, 200, self.switches.model_dump())
        if path == "/_emulator/switches" and verb == "POST":
            try:
                values = jsonwire.loads(body)
                if not isinstance(values, dict):
                    raise ValueError("a JSON object is expected")
                switches = self.set_switches(**values)
            except (ValueError, ValidationError) as exc:
                return _json(start_response, 400, {"error": str(exc)[:1000]})
            return _json(start_response, 200, switches.model_dump())
        if path == "/_emulator/state" and verb == "GET":
            with self._lock:
                state = {
                    "balance": self.balance,
                    "transactions": [
                        {"method": t.method, "agentTransactionId": t.agent_transaction_id,
                         "transactionId": t.transaction_id, "result": t.answer.get("result")}
                        for t in self.transactions.values()
                    ],
                }
            return _json(start_response, 200, state)
        if path == "/_emulator/top-up" and verb == "POST":
            try:
                amount = _decimal(jsonwire.loads(body).get("amount"), "amount")
            except (ValueError, AttributeError, _Refusal) as exc:
                return _json(start_response, 400, {"error": str(exc)})
            return _json(start_response, 200, {"balance": self.top_up(amount)})
        return _json(start_response, 404, {"error": "no such emulator control"})


# ----- request parsing (lenient where the spec says so: amounts of any scale, or numeric strings) -----


def _parse_object(body: bytes, content_type: str) -> dict[str, Any]:
    if not content_type.lower().startswith("application/json"):
        raise _Refusal(codes.REQUEST_DATA_ERROR, "Content-Type must be application/json")
    try:
        document = jsonwire.loads(body)
    except ValueError:
        raise _Refusal(codes.REQUEST_DATA_ERROR, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise _Refusal(codes.REQUEST_DATA_ERROR, "the body is not a JSON object")
    return document


def _required_str(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise _Refusal(codes.REQUEST_DATA_ERROR, f"{key} is required (a string)")
    return value


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _Refusal(codes.REQUEST_DATA_ERROR, f"{key} must be a number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _Refusal(codes.REQUEST_DATA_ERROR, f"{key} must be a number") from None
    if not number.is_finite() or number <= 0:
        raise _Refusal(codes.REQUEST_DATA_ERROR, f"{key} must be a positive number")
    return number


def _payment_request(body: bytes, content_type: str, amount_required: bool) -> dict[str, Any]:
    """A check or pay body, normalised (amounts as Decimals) so that repeats compare by value."""
    request = _parse_object(body, content_type)
    normalised = dict(request)
    for key in ("serviceId", "account"):
        _required_str(request, key)
    atid = request.get("agentTransactionId")
    if isinstance(atid, bool) or not isinstance(atid, int) or not 0 < atid < 10**18:
        raise _Refusal(codes.REQUEST_DATA_ERROR, "agentTransactionId must be an integer of up to 18 digits")
    try:
        datetime.strptime(_required_str(request, "agentTransactionDate"), _AGENT_DATE)
    except ValueError:
        raise _Refusal(codes.REQUEST_DATA_ERROR, "agentTransactionDate must be YYYY-MM-DDThh:mm:ss") from None
    for key in _AMOUNT_KEYS:
        if key in request:
            normalised[key] = _decimal(request[key], key)
        elif key == "amountTo" and amount_required:
            raise _Refusal(codes.REQUEST_DATA_ERROR, "amountTo is required")
    extras = request.get("extras", {})
    if not isinstance(extras, dict) or not all(isinstance(v, str) for v in extras.values()):
        raise _Refusal(codes.REQUEST_DATA_ERROR, "extras must be an object of strings")
    if "extraServices" in request:
        items = request["extraServices"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _Refusal(codes.REQUEST_DATA_ERROR, "extraServices must be an array of objects")
        normalised["extraServices"] = [
            {**item, "subServiceId": _required_str(item, "subServiceId"), "amount": _decimal(item.get("amount"), "amount")}
            for item in items
        ]
    return normalised


# ----- answers -----


def _refused(refusal: _Refusal, atid: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"result": refusal.result, "resultMessage": refusal.message}
    if atid is not None:
        answer["agentTransactionId"] = atid
    return answer


def _pending_answer(transaction: Transaction, code: int) -> dict[str, Any]:
    return {
        "result": code,
        "resultMessage": codes.RESULT_CODES[code].meaning,
        "transactionId": transaction.transaction_id,
        "agentTransactionId": transaction.agent_transaction_id,
    }


def _json(start_response: Any, status: int, document: Any) -> list[bytes]:
    return reply(start_response, status, jsonwire.encode(_jsonable(document)), JSON)


def _jsonable(value: Any) -> Any:
    """Switch models and tuples as plain JSON values (Decimals stay numbers with their own scale)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


class _DroppedConnection(ConnectionAbortedError):
    """Raised mid-answer so that the server closes the connection before the declared length is sent."""


def _unavailable(start_response: Any, mode: str) -> Iterable[bytes]:
    if mode == "drop":
        start_response("200 OK", [("Content-Type", JSON), ("Content-Length", "1000")])
        return _truncated()
    return reply(start_response, 503, b"service unavailable\n", "text/plain")


def _truncated() -> Iterator[bytes]:
    yield b'{"result":'
    raise _DroppedConnection("emulated connection drop")


def _address_allowed(address: str, allowed: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)
    except ValueError:
        return False


def make_emulator(**options: Any) -> PaymentsEmulator:
    """A processing centre with the seed data; ``options``: ``token_header`` (a custom header carrying the bare
    token, besides ``Authorization: Bearer``), ``allowed_ips`` (addresses or networks; empty = any),
    ``allow_ip_without_token``, and any switch of :class:`PaymentsSwitches` by name."""
    own = {key: options.pop(key) for key in ("token_header", "allowed_ips", "allow_ip_without_token") if key in options}
    if "allowed_ips" in own:
        own["allowed_ips"] = tuple(own["allowed_ips"])
    return PaymentsEmulator(switches=PaymentsSwitches.model_validate(options), **own)
