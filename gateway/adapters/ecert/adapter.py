"""The ecert adapter: the gateway's payload operations carried out against the ИС ЭС REST API.

Every request carries ``x-api-key``, ``x-request-id``, ``x-request-date`` and ``x-jws-signature`` (the body sent
is the RFC 8785 form it signs); every JSON answer must carry a valid ``x-jws-signature`` or it is refused.
Create, edit and block are tasks at the backend: :meth:`EcertAdapter.handle` returns the acknowledgement with a
:class:`PendingWork`, and :meth:`EcertAdapter.poll` follows the task through ``/ec-tasks-status`` and fetches its
result from ``/ec-tasks-results`` once it is executed. A task request repeated for the same request key carries
the same ``x-request-id`` and the same body, so the backend names the task it already has instead of making a
second one (``request_id.py``)."""
from __future__ import annotations

import asyncio
import functools
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from lxml import etree

from gateway.adapters.base import AdapterAnswer, PendingWork
from gateway.adapters.ecert import codes, mapping
from gateway.adapters.ecert.jws import DetachedSigner, SignatureError, canonical_body, canonical_json
from gateway.adapters.ecert.mapping import element, leaf, read_failure
from gateway.adapters.ecert.options import EcertOptions
from gateway.adapters.ecert.request_id import task_request_id
from gateway.adapters.payload import Operation, PayloadSchema
from gateway.outbound.async_client import HttpAnswer, HttpRequests
from gateway.errors import ErrorCode, ErrorInfo, GatewayError
from gateway.soap.values import parse_datetime

NAME = "ecert"
INLINE_VERIFY_BYTES = 64 * 1024  # larger answers are verified off the loop
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[34][0-9a-fA-F]{3}-[89ab][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$")
# The task status an acknowledgement stands for until /ec-tasks-status says more.
_ACK_STATUS = {"REQUEST_IS_QUEUED": "requestIsQueued", "REQUEST_IS_ACCEPTED": "requestIsAcceptedBySmev"}


@dataclass(frozen=True)
class _TaskOperation:
    path: str
    task_type: str
    response: str
    body: Callable[[etree._Element], list[dict[str, Any]]]


_TASK_OPERATIONS = {
    "CreateCertificatesRequest": _TaskOperation("/ec-create", "ec_create", "CreateCertificatesResponse", mapping.create_body),
    "EditCertificatesRequest": _TaskOperation("/ec-edit", "ec_edit", "EditCertificatesResponse", mapping.edit_body),
    "BlockCertificatesRequest": _TaskOperation("/ec-block", "ec_block", "BlockCertificatesResponse", mapping.block_body),
}
_RESPONSE_OF_TYPE = {operation.task_type: operation.response for operation in _TASK_OPERATIONS.values()}


@dataclass(frozen=True)
class _Reply:
    """A successful, verified backend answer: JSON ``value`` or a ``text/plain`` ``text``."""

    headers: Mapping[str, str]
    value: Any = None
    text: str | None = None


class EcertAdapter:
    """BackendAdapter for ИС ЭС (see the module docstring)."""

    name = NAME

    def __init__(self, options: EcertOptions, key: bytes, http: HttpRequests) -> None:
        self._options = options
        self._signer = DetachedSigner(key)
        self._http = http
        self._schema = PayloadSchema.of(NAME)
        self.namespace: str = self._schema.namespace
        self._direct_operations: dict[str, Operation] = {
            "GetDetailedStatementRequest": self._detailed_statement,
            "GetTasksStatusRequest": self._tasks_status,
            "GetTasksResultsRequest": self._tasks_results,
        }

    # ------------------------------------------------------------------------------------------ operations
    async def handle(self, data: etree._Element, deadline: float, request_key: str | None = None) -> AdapterAnswer:
        """Validate ``data``, call the operation it names and return its (possibly pending) answer; a task
        request's ``x-request-id`` is derived from ``request_key`` (see the module docstring)."""
        tasks = {name: functools.partial(self._submit, operation, request_key) for name, operation in _TASK_OPERATIONS.items()}
        return await self._schema.serve({**self._direct_operations, **tasks}, data, deadline)

    async def poll(self, reference: Mapping[str, Any], attempt: int, deadline: float) -> AdapterAnswer:
        """Follow the task ``reference`` names: pending again while it runs, final once it is executed (with its
        record results) or has failed (with the failed status)."""
        try:
            task = _PendingTask(**{key: str(reference[key]) for key in _PendingTask.__dataclass_fields__})
        except KeyError as exc:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"reference lacks {exc}") from exc
        if task.task_type not in _RESPONSE_OF_TYPE or not _UUID.match(task.task_id):
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"reference names no create/edit/block task: {dict(reference)}")
        reply = await self._exchange(
            "POST", "/ec-tasks-status", {"Request_Types": [task.task_type], "Task_Quantity": 100}, deadline
        )
        status = self._listed_status(reply, task.task_id) or task.status
        if status in codes.RUNNING_STATUSES:
            answer = self._pending(task, status, attempt)
        elif status in codes.FAILED_STATUSES:
            answer = AdapterAnswer(self._outcome(task, status, []), status, f"task {task.task_id} ended {status}")
        else:
            answer = await self._executed(task, deadline)
        self._schema.check_answer(answer.data)
        return answer

    def close(self) -> None:
        """Connections belong to the gateway's shared HTTP client; nothing of the adapter's own to release."""

    # ------------------------------------------------------------------------------------------ tasks
    async def _submit(self, operation: _TaskOperation, request_key: str | None, data: etree._Element, deadline: float) -> AdapterAnswer:
        request_id = task_request_id(operation.path, request_key)
        reply = await self._exchange("POST", operation.path, operation.body(data), deadline, request_id=request_id)
        acknowledgement = (reply.text or "").strip()
        if acknowledgement not in codes.ACKNOWLEDGEMENTS:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{operation.path}: expected REQUEST_IS_QUEUED or REQUEST_IS_ACCEPTED")
        # The 201 body names no task; the task Id is x-response-id (spec open question 2).
        task_id = _header(reply.headers, "x-response-id")
        if not _UUID.match(task_id):
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{operation.path}: x-response-id {task_id!r} is not a task Id")
        task = _PendingTask(task_id.lower(), operation.task_type, request_id, acknowledgement, _ACK_STATUS[acknowledgement])
        return AdapterAnswer(
            self._outcome(task, task.status, []),
            acknowledgement,
            f"task {task.task_id} accepted",
            PendingWork(task.reference(), self._options.poll_seconds),
        )

    def _pending(self, task: _PendingTask, status: str, attempt: int) -> AdapterAnswer:
        # Back-off doubles from pollSeconds at each attempt, up to maxPollSeconds (spec §13.2: 5 s → 60 s).
        delay = min(self._options.poll_seconds * 2 ** min(max(attempt, 0), 20), self._options.max_poll_seconds)
        task = _PendingTask(task.task_id, task.task_type, task.request_id, task.acknowledgement, status)
        return AdapterAnswer(self._outcome(task, status, []), status, f"task {task.task_id} {status}", PendingWork(task.reference(), delay))

    def _listed_status(self, reply: _Reply, task_id: str) -> str | None:
        """The task's status in an /ec-tasks-status answer; None when not listed (or only acknowledged)."""
        if reply.text is not None:
            return None
        with read_failure("/ec-tasks-status"):
            listed = [_task_status(entry) for entry in _list(reply.value)]
        return next((status for listed_id, _, status in listed if listed_id == task_id), None)

    async def _executed(self, task: _PendingTask, deadline: float) -> AdapterAnswer:
        reply = await self._exchange("POST", "/ec-tasks-results", mapping.tasks_results_body([task.task_id]), deadline)
        results = _task_results(reply.value)
        match = next((records for task_id, _, records in results if task_id == task.task_id), None)
        if match is None:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"/ec-tasks-results has no result for task {task.task_id}")
        failed = sum(1 for record in match if record.findtext(mapping.q("processedSuccessfully")) != "true")
        if failed:
            status_code, message = "RECORDS_FAILED", f"{failed} of {len(match)} records not processed"
        else:
            status_code, message = "OK", f"{len(match)} records processed"
        return AdapterAnswer(self._outcome(task, codes.EXECUTED, match), status_code, message)

    def _outcome(self, task: _PendingTask, status: str, records: list[etree._Element]) -> etree._Element:
        return element(
            _RESPONSE_OF_TYPE[task.task_type],
            leaf("requestId", task.request_id),
            leaf("taskId", task.task_id),
            leaf("taskType", task.task_type),
            leaf("acknowledgement", task.acknowledgement),
            leaf("taskStatus", status),
            *records,
        )

    # ------------------------------------------------------------------------------------------ direct
    async def _detailed_statement(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        number = data.findtext(mapping.q("certificateNumber")).strip()
        reply = await self._exchange("GET", f"/ec-detailed-statement?cn={quote(number)}", None, deadline)
        with read_failure("/ec-detailed-statement"):
            if not isinstance(reply.value, dict):
                raise TypeError("eCertificate is not an object")
            answer = element("GetDetailedStatementResponse", mapping.certificate(reply.value))
        return AdapterAnswer(answer)

    async def _tasks_status(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        reply = await self._exchange("POST", "/ec-tasks-status", mapping.tasks_status_body(data), deadline)
        if reply.text is not None:
            return AdapterAnswer(element("GetTasksStatusResponse", leaf("acknowledgement", _acknowledgement(reply.text))))
        with read_failure("/ec-tasks-status"):
            tasks = [_task_status(entry) for entry in _list(reply.value)]
        return AdapterAnswer(
            element(
                "GetTasksStatusResponse",
                *(element("task", leaf("taskId", i), leaf("taskType", t), leaf("taskStatus", s)) for i, t, s in tasks),
            )
        )

    async def _tasks_results(self, data: etree._Element, deadline: float) -> AdapterAnswer:
        reply = await self._exchange("POST", "/ec-tasks-results", mapping.tasks_results_body(mapping.requested_task_ids(data)), deadline)
        return AdapterAnswer(
            element(
                "GetTasksResultsResponse",
                *(
                    element("taskResult", leaf("taskId", task_id), leaf("taskType", task_type), *records)
                    for task_id, task_type, records in _task_results(reply.value)
                ),
            )
        )

    # ------------------------------------------------------------------------------------------ HTTP
    async def _exchange(
        self, method: str, path: str, payload: Any, deadline: float, request_id: str | None = None
    ) -> _Reply:
        """One signed request; returns the verified answer or raises the GatewayError its failure maps to."""
        body = None if payload is None else canonical_json(payload)
        request_id = request_id or str(uuid.uuid4())
        headers = {
            "Accept": "application/json, text/plain",
            "x-api-key": self._options.api_key,
            "x-request-id": request_id,
            "x-request-date": datetime.now(UTC).isoformat(timespec="seconds"),
            "x-jws-signature": self._signer.sign(body or b""),
        }
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        deadline = min(deadline, time.monotonic() + self._options.timeout_seconds)
        answer = await self._http.request(method, self._options.base_url + path, body, headers, deadline)
        route = path.split("?", 1)[0]
        correlation = _header(answer.headers, "x-correlation-id")
        if correlation and correlation.lower() != request_id:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{route}: x-correlation-id {correlation} is not our x-request-id")
        if answer.status not in (200, 201):
            raise self._failure(route, answer)
        if _is_text(answer):
            return _Reply(answer.headers, text=answer.body.decode("utf-8", errors="replace"))
        if len(answer.body) > INLINE_VERIFY_BYTES:
            # Canonicalising JSON is pure Python (~25 ms for 100 KiB, a second for 9 MiB): a large answer is
            # verified on a thread, so that the loop's other exchanges go on meanwhile.
            return _Reply(answer.headers, value=await asyncio.to_thread(self._verified_json, route, answer))
        return _Reply(answer.headers, value=self._verified_json(route, answer))

    def _verified_json(self, route: str, answer: HttpAnswer) -> Any:
        signature = _header(answer.headers, "x-jws-signature")
        if not signature:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{route}: HTTP {answer.status} answer without x-jws-signature")
        try:
            self._signer.verify(signature, canonical_body(answer.body))
            return json.loads(answer.body)
        except SignatureError as exc:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{route}: x-jws-signature refused: {exc}") from exc
        except ValueError as exc:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{route}: {exc}") from exc

    def _failure(self, route: str, answer: HttpAnswer) -> GatewayError:
        """The GatewayError an error answer stands for (see the mapping table in docs/adapters/ecert.md)."""
        if _is_json(answer):
            try:
                errors = _service_errors(self._verified_json(route, answer))
            except GatewayError:
                # Whoever could not authenticate us cannot be expected to sign for us; its codes are not passed on.
                if answer.status in (401, 403):
                    return _http_refusal(route, answer)
                raise
            return _business_fault(route, answer, errors)
        if answer.status in (401, 403):
            return _http_refusal(route, answer)
        if answer.status >= 500:
            return GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{route}: HTTP {answer.status}")
        return GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{route}: HTTP {answer.status} without a ServiceError body")


@dataclass(frozen=True)
class _PendingTask:
    """What a pending create/edit/block answer keeps between polls (its PendingWork reference)."""

    task_id: str
    task_type: str
    request_id: str
    acknowledgement: str
    status: str

    def reference(self) -> dict[str, str]:
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "request_id": self.request_id,
            "acknowledgement": self.acknowledgement,
            "status": self.status,
        }


# ---------------------------------------------------------------------------------------------- helpers
def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value.strip()


def _content_type(answer: HttpAnswer) -> str:
    return _header(answer.headers, "content-type").split(";", 1)[0].strip().lower()


def _is_text(answer: HttpAnswer) -> bool:
    return _content_type(answer) == "text/plain"


def _is_json(answer: HttpAnswer) -> bool:
    return _content_type(answer).endswith("json") or answer.body.lstrip()[:1] in (b"{", b"[")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a JSON array")
    return value


def _acknowledgement(text: str) -> str:
    value = text.strip()
    if value not in codes.ACKNOWLEDGEMENTS:
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"unexpected text answer {value[:40]!r}")
    return value


def _task_status(entry: Any) -> tuple[str, str, str]:
    """(Id, Task_Type, Status) of one TaskStatus, checked against the enumerations."""
    task_id, task_type, status = str(entry["Id"]).lower(), entry["Task_Type"], entry["Status"]
    if not _UUID.match(task_id) or task_type not in codes.TASK_TYPES or status not in codes.TASK_STATUSES:
        raise ValueError(f"TaskStatus {entry!r} outside the protocol's values")
    return task_id, task_type, status


def _task_results(value: Any) -> list[tuple[str, str, list[etree._Element]]]:
    """(Id, Task_Type, record results) of every task in an ``ec_result_Response``; both the ``*_task_results``
    and ``*_tasks_results`` spellings of the groups are read (spec §8.6)."""
    with read_failure("/ec-tasks-results"):
        if not isinstance(value, dict):
            raise TypeError("ec_result_Response is not an object")
        groups = value.get("ec_tasks_results") or {}
        out = []
        for key, tasks in groups.items():
            if not (key.endswith("_task_results") or key.endswith("_tasks_results")):
                raise ValueError(f"unknown result group {key}")
            for task in _list(tasks):
                task_id, task_type = str(task["Id"]).lower(), task["Task_Type"].strip()
                if not _UUID.match(task_id) or task_type not in codes.TASK_TYPES:
                    raise ValueError(f"task {task_id} of type {task_type!r}")
                lists = [v for k, v in task.items() if k not in ("Id", "Task_Type") and isinstance(v, list)]
                # Register-extract results carry reports, not record protocols; they are not mapped.
                records = [] if task_type == "ec_register_extract" else [mapping.record_result(r) for v in lists for r in v]
                out.append((task_id, task_type, records))
        return out


def _service_errors(value: Any) -> list[tuple[str, str | None]]:
    """(Latin code, msg) of each ServiceError entry; codes outside the protocol's list are refused."""
    errors: list[tuple[str, str | None]] = []
    with read_failure("ServiceError"):
        for entry in _list(value["Errors"]):
            code = codes.latin(entry["code"])
            if code not in codes.BUSINESS_ERRORS:
                raise ValueError(f"unknown error code {entry['code']!r}")
            msg = entry.get("msg")
            errors.append((code, msg if isinstance(msg, str) else None))
        if not errors:
            raise ValueError("empty Errors")
    return errors


def _response_date(answer: HttpAnswer) -> datetime:
    try:
        return parse_datetime(_header(answer.headers, "x-response-date"))
    except ValueError:
        return datetime.now(UTC)


def _business_fault(route: str, answer: HttpAnswer, errors: list[tuple[str, str | None]]) -> GatewayError:
    code, msg = errors[0]
    detail = "; ".join(f"{c}: {m or codes.BUSINESS_ERRORS[c]}" for c, m in errors)
    return GatewayError(
        ErrorCode.PROVIDER_FAULT,
        f"{route}: HTTP {answer.status} {detail}"[:1000],
        sub_error=ErrorInfo(code=code, message=(msg or codes.BUSINESS_ERRORS[code])[:256], date=_response_date(answer)),
    )


def _http_refusal(route: str, answer: HttpAnswer) -> GatewayError:
    reason = "authorisation failed (x-api-key or signature)" if answer.status == 401 else "access denied"
    return GatewayError(
        ErrorCode.PROVIDER_FAULT,
        f"{route}: HTTP {answer.status} {reason}",
        sub_error=ErrorInfo(code=f"HTTP{answer.status}", message=reason, date=_response_date(answer)),
    )
