"""An ИС ЭС server (electronic certificates REST API 1.2.1-Y, spec backend-ecert.md §13.1) for tests and demos.

Protocol, as the spec's emulator guidance describes it:

- routes under ``/api/1.2.1-Y/ec`` and the Cyrillic alias ``/api/1.2.1-У/ес`` (also ``/ес-create``):
  ``POST ec-create | ec-edit | ec-block`` (201 ``text/plain`` ``REQUEST_IS_QUEUED``, task Id in ``x-response-id``),
  ``POST ec-tasks-status`` (201, JSON array of TaskStatus), ``POST ec-tasks-results`` (201, ``ec_tasks_results``),
  ``GET ec-detailed-statement?cn=`` (200, ``eCertificate``); another version in the path → 400 ``EC00202``,
  another operation → 400 ``EC00203``;
- checks in order: ``x-api-key`` (401, unsigned ``text/plain``), ``x-request-id`` / ``x-request-date``
  (400 ``EC00201``), ``x-jws-signature`` (mandatory by default; 401 ``EC00201``), then the request schema with the
  intended patterns and the §12 presence rules (400, one ``EC00201`` per violation); edit/block of a blocked
  certificate → 400 ``EC00219``, of one that is not active → 400 ``EC00220``; unknown ``cn`` → 404 ``EC00216``;
  a task-results request naming no executed task → 400 ``EC00201``;
- every JSON answer is sent in its RFC 8785 form and signed (detached JWS HS512, b64:false; computed here by hand
  with hmac, independently of the adapter's joserfc code); all answers carry ``x-response-date``,
  ``x-response-id`` and ``x-correlation-id`` (= the request's ``x-request-id``);
- idempotency: the same ``x-request-id`` with the same path and canonical body returns the same 201 (the
  acknowledgement first given, the same task Id) without a new task, also while the first request is still
  being answered; with another body → 400 ``EC00201``;
- a task is listed by ``/ec-tasks-status`` (oldest first, per API key, up to ``Task_Quantity``) and advances one
  step along requestIsQueued → requestIsAcceptedBySmev → underProcessing → responseIsAcceptedBySmev each time it
  is listed; at its ``polls_until_done``-th listing it takes ``final_status``. Executed tasks stay listed until
  their results are fetched (results stay fetchable); failed tasks stay listed.
- record-level rules (``isProcessedSuccessfully=false``): ``002`` unknown certificate / factAssignmentUuid,
  ``003`` endDate before startDate, ``004`` certificate already blocked. A created certificate whose card fails
  the Luhn check is ``ECSTPACT`` with ``ECASCARD``, otherwise ``ECSTACTV``.

Seed data (``ecert_data.seed_certificates``), API key ``ecert-demo-key``, JWS key the spec's 64-byte test key
``0123456789abcdef`` ×4:

| certificateNumber | factAssignmentUuid | type / programme | state |
|---|---|---|---|
| 2021080713257902301000001 | 0f8fad5b-d9cb-469f-a165-70867728950e | ЕСТР0001 / ЕСРРАССТ | ECSTACTV, partly used: one purchase, balance 15500.00 roubles / 1 unit |
| 2021080713257902301000002 | 7c9e6679-7425-40de-944b-e07fc1f90ae7 | ЕСТР0002 / ЕСРРАССС | ECSTBLKD (ECSR0001) |
| 2021080713257902301000003 | 16fd2706-8baf-433b-82eb-8c7fada847da | ЕСТР0004 / ЕСРРАССТ | ECSTPACT, suspended ECASCARD |
| 2021080713257902301000004 | 886313e1-3b8a-4372-9b90-0c9aee199e5d | ЕСТР0003 / ЕСРРАССТ | ECSTCLSD (ECSR0006), fully used: zero balances omitted |

Switches (:class:`EcertSwitches`; set ``emulator.switches.<name> = …`` or ``emulator.set_switches(**values)``, or
``POST /_emulator/switches`` with a JSON object; read them with ``GET /_emulator/switches``): ``delay_seconds``,
``down`` (``null`` | ``"503"`` | ``"drop"``), ``forge_response_signature``, ``omit_response_signature``,
``polls_until_done``, ``final_status``, ``acknowledgement``, ``force_error`` (an ``EC00xxx`` code every API request
answers with, at its HTTP status), ``require_signature``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulators.ecert_data import BLOCKED, Registry, Task, now
from emulators.ecert_schema import BATCHES, BODIES, TASK_TYPES, UUID_PATTERN, presence_violations, violations

DEFAULT_API_KEY = "ecert-demo-key"
DEFAULT_JWS_KEY = b"0123456789abcdef" * 4
API_VERSION = "1.2.1-Y"

HTTP_STATUS = {"EC00200": 500, "EC00201": 400, "EC00202": 400, "EC00203": 400, "EC00216": 404, "EC00219": 400, "EC00220": 400, "EC00272": 400}
ERROR_TEXT = {
    "EC00200": "Системная ошибка",
    "EC00201": "Запрос не соответствует схеме данных",
    "EC00202": "Неподдерживаемая версия протокола запроса",
    "EC00203": "Неверный тип запроса",
    "EC00216": "Сертификат не найден",
    "EC00219": "Сертификат заблокирован",
    "EC00220": "Сертификат не активен",
    "EC00272": "Операция недоступна",
}
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}
_JWS_HEADER = base64.urlsafe_b64encode(b'{"b64":false,"crit":["b64"],"typ":"JWT","alg":"HS512"}').rstrip(b"=").decode()
# Cyrillic look-alikes in paths (spec §14: route both ``ec`` and ``ес``, ``1.2.1-Y`` and ``1.2.1-У``).
_PATH_LOOKALIKES = str.maketrans({"е": "e", "с": "c", "У": "Y"})
_UUID = re.compile(UUID_PATTERN)
_TASK_PATHS = {"ec-create": "ec_create", "ec-edit": "ec_edit", "ec-block": "ec_block"}


class EcertSwitches(BaseModel):
    """Runtime behaviour; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    down: Literal["503", "drop"] | None = None
    forge_response_signature: bool = False
    omit_response_signature: bool = False
    polls_until_done: int = Field(default=2, ge=1, le=1000)
    final_status: Literal["taskIsExecuted", "requestIsRejectedBySmev", "responseIsRejectedBySmev", "cancelled"] = "taskIsExecuted"
    acknowledgement: Literal["REQUEST_IS_QUEUED", "REQUEST_IS_ACCEPTED"] = "REQUEST_IS_QUEUED"
    force_error: Literal["EC00200", "EC00201", "EC00202", "EC00203", "EC00216", "EC00219", "EC00220", "EC00272"] | None = None
    require_signature: bool = True


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the emulator saw it (headers with lower-case names)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    signed: bool = True
    response_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class _Refused(Exception):
    """A request answered with a ServiceError."""

    def __init__(self, status: int, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.status = status
        self.errors = errors[:100]


def _refuse(code: str, message: str | None = None) -> _Refused:
    return _Refused(HTTP_STATUS[code], [(code, message or ERROR_TEXT[code])])


class EcertEmulator:
    """The WSGI ИС ЭС server; ``received`` lists every API request in order, ``registry`` holds its state."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, jws_key: bytes = DEFAULT_JWS_KEY, **switches: Any) -> None:
        self.api_key = api_key
        self._key = jws_key
        self.switches = EcertSwitches(**switches)
        self.registry = Registry()
        self.received: list[ReceivedRequest] = []
        # (api key, x-request-id) → (task type, body fingerprint, task Id, acknowledgement given)
        self._idempotency: dict[tuple[str, str], tuple[str, bytes, str, str]] = {}
        self._lock = threading.Lock()

    def set_switches(self, **values: Any) -> EcertSwitches:
        """Change several switches at once (all or none: the new set is validated first)."""
        self.switches = EcertSwitches(**{**self.switches.model_dump(), **values})
        return self.switches

    def sign(self, payload: bytes) -> str:
        """Detached JWS HS512 (b64:false) of canonical ``payload`` with the emulator's key."""
        return sign_detached(self._key, payload)

    # ------------------------------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # PEP 3333 hands the path over as latin-1 text of its UTF-8 bytes.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", errors="replace")
        method = environ.get("REQUEST_METHOD", "GET")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.startswith("/_emulator/"):
            return self._control(method, path, body, start_response)
        headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        with self._lock:
            self.received.append(ReceivedRequest(method, path, environ.get("QUERY_STRING", ""), headers, body))
        switches = self.switches
        if switches.delay_seconds:
            time.sleep(switches.delay_seconds)
        if switches.down == "503":
            return self._send(start_response, _Answer(503, b"Service Unavailable\n", "text/plain", signed=False), headers)
        if switches.down == "drop":
            return self._drop(start_response)
        try:
            answer = self._api(method, path, environ.get("QUERY_STRING", ""), headers, body, switches)
        except _Refused as refused:
            payload = {"Errors": [{"code": code, "msg": message[:256]} for code, message in refused.errors]}
            answer = _Answer(refused.status, rfc8785.dumps(payload))
        return self._send(start_response, answer, headers)

    def _send(self, start_response: Any, answer: _Answer, request_headers: dict[str, str]) -> list[bytes]:
        headers = [
            ("Content-Type", answer.content_type),
            ("Content-Length", str(len(answer.body))),
            ("x-response-date", now()),
            ("x-response-id", answer.response_id),
        ]
        if request_headers.get("x-request-id"):
            headers.append(("x-correlation-id", request_headers["x-request-id"]))
        switches = self.switches
        if answer.signed and not switches.omit_response_signature:
            signature = self.sign(answer.body)
            if switches.forge_response_signature:
                # A well-formed signature by another key: only verification can tell.
                signature = sign_detached(hashlib.sha512(self._key).digest(), answer.body)
            headers.append(("x-jws-signature", signature))
        start_response(f"{answer.status} {_REASONS.get(answer.status, 'Error')}", headers)
        return [answer.body]

    @staticmethod
    def _drop(start_response: Any) -> Iterator[bytes]:
        # Promise a body, then break off: the client sees the connection cut mid-answer.
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "1000")])
        yield b"{"
        raise ConnectionAbortedError("emulated connection drop")

    def _control(self, method: str, path: str, body: bytes, start_response: Any) -> list[bytes]:
        if path != "/_emulator/switches":
            return self._plain(start_response, 404, {"error": "unknown control path"})
        if method == "POST":
            try:
                values = json.loads(body or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("a JSON object is expected")
                with self._lock:
                    self.set_switches(**values)
            except (ValueError, ValidationError) as exc:
                return self._plain(start_response, 400, {"error": str(exc)[:1000]})
        return self._plain(start_response, 200, self.switches.model_dump())

    @staticmethod
    def _plain(start_response: Any, status: int, value: Any) -> list[bytes]:
        body = json.dumps(value, ensure_ascii=False).encode()
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    # ------------------------------------------------------------------------------------------ protocol
    def _api(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, switches: EcertSwitches) -> _Answer:
        if headers.get("x-api-key") != self.api_key:
            return _Answer(401, b"Unauthorized\n", "text/plain", signed=False)
        request_id = headers.get("x-request-id", "")
        if not _UUID.match(request_id):
            raise _refuse("EC00201", "x-request-id: отсутствует или не UUID")
        if not _is_date_time(headers.get("x-request-date", "")):
            raise _refuse("EC00201", "x-request-date: отсутствует или не ISO 8601")
        signature = headers.get("x-jws-signature")
        if signature is not None or switches.require_signature:
            canonical = _canonical(body)
            if signature is None or canonical is None or not self._verifies(signature, canonical):
                raise _Refused(401, [("EC00201", "x-jws-signature: подпись отсутствует или неверна")])
        operation = self._operation(path)
        if switches.force_error:
            raise _refuse(switches.force_error)
        if operation == "ec-detailed-statement" and method == "GET":
            return self._detailed_statement(query)
        if method != "POST":
            raise _refuse("EC00203", f"{method} {operation}: метод не поддерживается")
        value = _json(body)
        if operation in _TASK_PATHS:
            return self._accept(_TASK_PATHS[operation], request_id, headers["x-api-key"], body, value, switches)
        if operation == "ec-tasks-status":
            return self._tasks_status(headers["x-api-key"], value, switches)
        if operation == "ec-tasks-results":
            return self._tasks_results(headers["x-api-key"], value)
        raise _refuse("EC00203", f"{operation}: неизвестный тип запроса")

    @staticmethod
    def _operation(path: str) -> str:
        parts = path.translate(_PATH_LOOKALIKES).strip("/").split("/")
        if len(parts) == 1:
            return parts[0]
        if len(parts) != 4 or parts[0] != "api" or parts[2] != "ec":
            raise _refuse("EC00203", f"{path}: неизвестный путь")
        if parts[1] != API_VERSION:
            raise _refuse("EC00202", f"версия {parts[1]} не поддерживается")
        return parts[3]

    def _verifies(self, signature: str, canonical: bytes) -> bool:
        header, _, rest = signature.strip().partition(".")
        empty, _, mac = rest.partition(".")
        if empty or not header or not mac:
            return False
        try:
            params = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
            received = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        except ValueError:
            return False
        if not isinstance(params, dict) or params.get("alg") != "HS512" or params.get("b64") is not False or "b64" not in (params.get("crit") or []):
            return False
        # The received header is used as sent (spec §4.1 verifier step 4).
        expected = hmac.new(self._key, header.encode() + b"." + canonical, hashlib.sha512).digest()
        return hmac.compare_digest(expected, received)

    def _accept(self, task_type: str, request_id: str, api_key: str, body: bytes, value: Any, switches: EcertSwitches) -> _Answer:
        rows, problems = violations(BATCHES[task_type], value)
        if not problems and task_type == "ec_create":
            problems = presence_violations(rows)
        if problems:
            raise _Refused(400, [("EC00201", problem) for problem in problems])
        fingerprint = hashlib.sha256(rfc8785.dumps(value)).digest()
        with self._lock:
            earlier = self._idempotency.get((api_key, request_id))
            if earlier is not None:
                if earlier[:2] != (task_type, fingerprint):
                    raise _refuse("EC00201", "x-request-id уже использован для другого запроса")
                return _Answer(201, earlier[3].encode(), "text/plain", signed=False, response_id=earlier[2])
            if task_type != "ec_create":
                self._check_states(rows)
            task = Task(str(uuid.uuid4()), task_type, api_key, request_id, rows, switches.final_status)
            self.registry.accept(task)
            self._idempotency[(api_key, request_id)] = (task_type, fingerprint, task.id, switches.acknowledgement)
        return _Answer(201, switches.acknowledgement.encode(), "text/plain", signed=False, response_id=task.id)

    def _check_states(self, rows: list[Any]) -> None:
        errors = []
        for row in rows:
            certificate = self.registry.find(row.certificateNumber, row.factAssignmentUuid)
            if certificate is None:
                continue  # unknown certificates fail at record level when the task is executed
            if certificate.status_code in BLOCKED:
                errors.append(("EC00219", f"запись {row.recordId}: {ERROR_TEXT['EC00219']}"))
            elif certificate.status_code != "ECSTACTV":
                errors.append(("EC00220", f"запись {row.recordId}: {ERROR_TEXT['EC00220']}"))
        if errors:
            raise _Refused(400, errors)

    def _tasks_status(self, api_key: str, value: Any, switches: EcertSwitches) -> _Answer:
        request, problems = violations(BODIES["ec_tasks_status"], value)
        if problems:
            raise _Refused(400, [("EC00201", problem) for problem in problems])
        unknown = [t for t in request.Request_Types if t not in TASK_TYPES]
        if unknown:
            raise _refuse("EC00203", f"Request_Types: {', '.join(unknown)}")
        listed = []
        with self._lock:
            for task in self.registry.tasks.values():
                if len(listed) == request.Task_Quantity:
                    break
                if task.api_key == api_key and task.task_type in request.Request_Types and not task.fetched:
                    self.registry.advance(task, switches.polls_until_done)
                    listed.append({"Id": task.id, "Status": task.status, "Task_Type": task.task_type})
        return _Answer(201, rfc8785.dumps(listed))

    def _tasks_results(self, api_key: str, value: Any) -> _Answer:
        request, problems = violations(BODIES["ec_tasks_result"], value)
        if problems:
            raise _Refused(400, [("EC00201", problem) for problem in problems])
        groups: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for ref in request.eCertificateRequest_TaskResult:
                task = self.registry.tasks.get(ref.taskId.lower())
                if task is None or task.api_key != api_key or task.results is None:
                    continue
                task.fetched = True
                key, records = _RESULT_GROUPS[task.task_type]
                groups.setdefault(key, []).append({"Id": task.id, "Task_Type": task.task_type, records: task.results})
        if not groups:
            raise _refuse("EC00201", "нет выполненных заданий с указанными taskId")
        return _Answer(201, rfc8785.dumps({"ec_tasks_results": groups}))

    def _detailed_statement(self, query: str) -> _Answer:
        numbers = parse_qs(query).get("cn", [])
        if len(numbers) != 1 or not re.fullmatch(r"[0-9]{25}", numbers[0]):
            raise _refuse("EC00201", "cn: ожидается номер сертификата из 25 цифр")
        with self._lock:
            certificate = self.registry.certificates.get(numbers[0])
            if certificate is None:
                raise _refuse("EC00216")
            return _Answer(200, rfc8785.dumps(certificate.to_json()), "application/json")


# Result groups keep the source's key spellings (spec §8.6): ``task`` for create and block, ``tasks`` for edit.
_RESULT_GROUPS = {
    "ec_create": ("ec_create_task_results", "eCertificatesCreateResponse"),
    "ec_edit": ("ec_edit_tasks_results", "eCertificateEditResponse"),
    "ec_block": ("ec_block_task_results", "eCertificateBlockResponse"),
}


def sign_detached(key: bytes, payload: bytes) -> str:
    """Detached JWS HS512 (b64:false) of canonical ``payload``, computed by hand per RFC 7515 appendix F and
    RFC 7797, independently of the adapter's joserfc code."""
    mac = hmac.new(key, _JWS_HEADER.encode() + b"." + payload, hashlib.sha512).digest()
    return f"{_JWS_HEADER}..{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _canonical(body: bytes) -> bytes | None:
    if not body:
        return b""
    try:
        return rfc8785.dumps(json.loads(body))
    except (ValueError, rfc8785.CanonicalizationError):
        return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _refuse("EC00201", f"тело запроса не JSON: {exc}") from exc


def _is_date_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text


def make_emulator(**options: Any) -> EcertEmulator:
    """An emulator with ``api_key`` (str), ``jws_key`` (str, UTF-8 bytes, or bytes) and any switch of
    :class:`EcertSwitches` as keyword options."""
    key = options.pop("jws_key", DEFAULT_JWS_KEY)
    return EcertEmulator(jws_key=key.encode() if isinstance(key, str) else key, **options)
