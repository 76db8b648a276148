"""The payments adapter: an Agent of a payment processing centre speaking protocol API v20 (JSON over HTTP POST
to ``<baseUrl>/api/v20/<method>``).

Finality (spec §5) drives everything a payment does. A ``pay`` answered with a non-final code (1, 153, 220, 255),
or not answered at all, is not failed: it is pending, and the exact same body must be sent again, with growing
intervals, until a final code arrives. :meth:`PaymentsAdapter.handle` therefore returns a pending answer whose
:class:`PendingWork` reference keeps the request body byte for byte; :meth:`PaymentsAdapter.poll` resends it.
The processing centre answers a resend with the state of the one payment it holds for that agentTransactionId
(spec §6), so however often a body is resent, at most one payment is made.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from gateway.adapters.base import AdapterAnswer, PendingWork
from gateway.adapters.payload import Operation, PayloadSchema
from gateway.adapters.payments import codes, jsonwire, messages
from gateway.adapters.payments.options import PaymentsOptions
from gateway.outbound.async_client import HttpRequests
from gateway.errors import ErrorCode, ErrorInfo, GatewayError

ADAPTER_NAME = "payments"
API_PATH = "/api/v20/"
PENDING_STATUS = "PENDING"
OK_STATUS = "OK"
# Transport-level failures after which a payment's fate is unknown: it stays pending (spec §5, "no connection").
_UNKNOWN_OUTCOME = frozenset(
    {ErrorCode.PROVIDER_UNREACHABLE, ErrorCode.PROVIDER_TIMEOUT, ErrorCode.PROVIDER_RESPONSE_INVALID}
)
_MAX_BACKOFF_EXPONENT = 32


@dataclass(frozen=True)
class Reply:
    """One parsed answer of the processing centre."""

    result: int
    body: Mapping[str, Any]

    @property
    def message(self) -> str:
        value = self.body.get("resultMessage")
        return value if isinstance(value, str) else ""


class PaymentsAdapter:
    """The :class:`~gateway.adapters.base.BackendAdapter` for protocol v20."""

    name = ADAPTER_NAME

    def __init__(self, options: PaymentsOptions, http: HttpRequests, schema: PayloadSchema) -> None:
        self._options = options
        self._http = http
        self._schema = schema
        self.namespace = schema.namespace
        self._operations: dict[str, Operation] = {
            "ServicesRequest": self._services,
            "ServiceRequest": self._service,
            "BalanceRequest": self._balance,
            "CheckRequest": self._check,
            "PayRequest": self._pay,
            "OperatorByPhoneRequest": self._operator_by_phone,
        }

    # ----- BackendAdapter -----

    async def handle(self, data: etree._Element, deadline: float, request_key: str | None = None) -> AdapterAnswer:
        """Carry out the operation ``data`` names; see docs/adapters/payments.md for each. ``request_key`` is
        not needed: a check or pay is keyed by the agentTransactionId its payload gives or derives from its
        paymentKey, and its body is built from the payload alone, so a repeat resends the same body under the
        same id and the processing centre answers it with the one transaction it holds (spec §6)."""
        return await self._schema.serve(self._operations, data, deadline)

    async def poll(self, reference: Mapping[str, Any], attempt: int, deadline: float) -> AdapterAnswer:
        """Resend the pending request kept in ``reference`` unchanged; final answer, or pending again with a
        longer interval. Past ``giveUpSeconds`` since the first sending a still unresolved payment raises
        PROVIDER_TIMEOUT: its fate is then for an operator to reconcile, never for a new payment."""
        try:
            method = str(reference["method"])
            atid = int(reference["agentTransactionId"])
            body = str(reference["body"]).encode("utf-8")
            first_sent_at = float(reference["firstSentAt"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayError(ErrorCode.INTERNAL_ERROR, f"payments: unusable pending reference ({exc})") from exc
        if method not in ("check", "pay"):
            raise GatewayError(ErrorCode.INTERNAL_ERROR, f"payments: nothing to poll for method {method!r}")
        answer = await self._send_until_final(method, atid, body, first_sent_at, attempt, deadline)
        if answer.pending is not None and time.time() - first_sent_at > self._options.give_up_seconds:
            raise GatewayError(
                ErrorCode.PROVIDER_TIMEOUT,
                f"{method} agentTransactionId={atid} still not final after {self._options.give_up_seconds:.0f} s "
                f"(last: {answer.status_message}); reconcile it with the processing centre, do not pay it again",
            )
        self._schema.check_answer(answer.data)
        return answer

    def close(self) -> None:
        """Nothing of its own to release: the HTTP pool belongs to the gateway."""

    # ----- operations -----

    async def _services(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        reply = await self._final_reply("services", None, deadline)
        return AdapterAnswer(messages.services_answer(reply.body, "ServicesResponse"), OK_STATUS, reply.message or "OK")

    async def _service(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        service_id = messages.child_text(data, "serviceId") or ""
        reply = await self._final_reply("service", {"serviceId": service_id}, deadline)
        answer = messages.services_answer(reply.body, "ServiceResponse", only=service_id)
        return AdapterAnswer(answer, OK_STATUS, reply.message or "OK")

    async def _balance(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        reply = await self._final_reply("balance", None, deadline)
        return AdapterAnswer(messages.balance_answer(reply.body), OK_STATUS, reply.message or "OK")

    async def _operator_by_phone(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        phone = messages.child_text(data, "phoneNumber") or ""
        reply = await self._reply("operatorByPhone", jsonwire.encode({"phoneNumber": phone}), deadline)
        # "Not determined" is an answer, not a failure: the spec returns serviceId only when it is (Q17).
        if reply.result not in (codes.SUCCESS, codes.ACCOUNT_NOT_FOUND):
            raise _fault("operatorByPhone", reply)
        answer = messages.operator_answer(reply.body, phone, reply.result)
        return AdapterAnswer(answer, OK_STATUS, reply.message or "OK")

    async def _check(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        atid = messages.agent_transaction_id(data)
        body = jsonwire.encode(messages.check_body(data, atid))
        return await self._send_until_final("check", atid, body, time.time(), 0, deadline)

    async def _pay(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        atid = messages.agent_transaction_id(data)
        body = jsonwire.encode(messages.pay_body(data, atid))
        return await self._send_until_final("pay", atid, body, time.time(), 0, deadline)

    # ----- the finality rules -----

    async def _send_until_final(
        self, method: str, atid: int, body: bytes, first_sent_at: float, attempt: int, deadline: float
    ) -> AdapterAnswer:
        """Send ``body`` once and classify the outcome by spec §5. ``attempt`` 0 is the first sending."""
        repeat = attempt > 0

        def pending(reply: Reply | None, note: str | None = None) -> AdapterAnswer:
            build = messages.pay_answer if method == "pay" else messages.check_answer
            reference = {
                "method": method,
                # A string: 18-digit ids must not pass through any float-based JSON reader (spec §3).
                "agentTransactionId": str(atid),
                "body": body.decode("utf-8"),
                "firstSentAt": first_sent_at,
                "lastResult": None if reply is None else reply.result,
            }
            if reply is not None and reply.result not in codes.RESULT_CODES:
                # The payload schema admits documented codes only; an undocumented one is reported as a note.
                note, reply = f"undocumented result code {reply.result} {reply.message}".strip(), None
            try:
                data = build(atid, None if reply is None else reply.body, False, note)
                self._schema.check_answer(data)
            except GatewayError as exc:
                note, reply = f"unreadable answer ({exc.data})"[:300], None
                data = build(atid, None, False, note)
            why = note if reply is None else f"{reply.result} {reply.message}".strip()
            return AdapterAnswer(data, PENDING_STATUS, f"not final yet: {why}", PendingWork(reference, self._backoff(attempt)))

        try:
            reply = await self._reply(method, body, deadline)
            if reply.body.get("agentTransactionId", atid) != atid:
                raise messages.invalid(f"answer echoes agentTransactionId {reply.body.get('agentTransactionId')!r}")
        except GatewayError as exc:
            # A payment whose answer was lost may have been made: only a resend of the same body can tell.
            # A first check or pay refused outright (authorisation) was not processed and is final.
            unknown = exc.error in _UNKNOWN_OUTCOME or (repeat and exc.error is ErrorCode.PROVIDER_FAULT)
            if unknown and (method == "pay" or repeat):
                return pending(None, f"no usable answer ({exc.error.code}: {exc.data or exc.error.message})"[:300])
            raise
        if reply.result == codes.SUCCESS:
            build = messages.pay_answer if method == "pay" else messages.check_answer
            try:
                final = AdapterAnswer(build(atid, reply.body, True), OK_STATUS, reply.message or "Success")
                self._schema.check_answer(final.data)
            except GatewayError as exc:
                if method != "pay":
                    raise
                # A success we cannot read is still a payment whose outcome the caller cannot be told yet.
                return pending(None, f"unreadable success answer ({exc.data})"[:300])
            return final
        if reply.result in codes.NON_FINAL:
            return pending(reply)
        if reply.result == codes.REQUEST_DATA_ERROR and repeat and method == "pay":
            # 202 to a repeat of a pending request: the payment itself goes on to 0 or 300 (spec §5).
            return pending(reply)
        if reply.result not in codes.RESULT_CODES and method == "pay":
            return pending(reply)
        raise _fault(method, reply)

    def _backoff(self, attempt: int) -> float:
        """pollSeconds after the first sending, then doubling with each poll up to maxPollSeconds."""
        growth = 2 ** min(attempt, _MAX_BACKOFF_EXPONENT)
        return min(self._options.poll_seconds * growth, self._options.max_poll_seconds)

    async def _final_reply(self, method: str, request: Mapping[str, Any] | None, deadline: float) -> Reply:
        reply = await self._reply(method, None if request is None else jsonwire.encode(request), deadline)
        if reply.result != codes.SUCCESS:
            raise _fault(method, reply)
        return reply

    # ----- HTTP -----

    async def _reply(self, method: str, body: bytes | None, deadline: float) -> Reply:
        """POST to ``<baseUrl>/api/v20/<method>`` and parse the answer. An HTTP 5xx is "no connection"
        (PROVIDER_UNREACHABLE); 401/403 is an authorisation refusal (PROVIDER_FAULT)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self._options.auth_headers()}
        budget = min(deadline, time.monotonic() + self._options.timeout_seconds)
        answer = await self._http.request("POST", f"{self._options.base_url}{API_PATH}{method}", body, headers, budget)
        if answer.status >= 500:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{method}: HTTP {answer.status} from the processing centre")
        parsed = _parse(answer.body)
        if answer.status in (401, 403):
            code = str(parsed.result) if parsed is not None else f"HTTP{answer.status}"
            text = parsed.message if parsed is not None else ""
            raise GatewayError(
                ErrorCode.PROVIDER_FAULT,
                f"{method}: authorisation refused (HTTP {answer.status})",
                _sub_error(code, f"authorisation refused (HTTP {answer.status}) {text}".strip()),
            )
        if answer.status != 200:
            raise messages.invalid(f"{method}: unexpected HTTP {answer.status}")
        if parsed is None:
            raise messages.invalid(f"{method}: the answer is not a JSON object with an integer result")
        return parsed


def _parse(body: bytes) -> Reply | None:
    try:
        document = jsonwire.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    result = document.get("result")
    if isinstance(result, bool) or not isinstance(result, int):
        return None
    return Reply(result, document)


def _sub_error(code: str, message: str) -> ErrorInfo:
    return ErrorInfo(code=code, message=message[:500], date=datetime.now(UTC))


def _fault(method: str, reply: Reply) -> GatewayError:
    """PROVIDER_FAULT carrying the backend's result code (docs/adapters/payments.md, error mapping)."""
    row = codes.RESULT_CODES.get(reply.result)
    meaning = row.meaning if row is not None else "undocumented result code"
    message = f"{meaning}: {reply.message}" if reply.message else meaning
    return GatewayError(
        ErrorCode.PROVIDER_FAULT,
        f"{method}: result {reply.result} ({meaning})",
        _sub_error(str(reply.result), message),
    )
