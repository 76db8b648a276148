"""The admin API as a plain WSGI application: JSON over HTTP, bearer tokens, roles.

Every request needs an active token (401 otherwise); writes need the administrator role (403 for an auditor).
Routes are declared once in :data:`ROUTES`, which also feeds the OpenAPI document.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from gateway.admin.tokens import Principal, authenticate
from gateway.config import Settings
from gateway.maintenance import maintenance_state, set_maintenance
from journals import incidents
from journals.queries import LoggingQuery, csv_chunks, iter_logging, json_chunks, query_audit, query_logging, query_registration
from registry.admin import KINDS, EntityConflict, EntityNotFound, EntryInvalid, RegistryAdmin
from registry.export import export_registry
from journals.times import iso_utc

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
MAX_BODY_BYTES = 1024 * 1024
JSON_TYPE = "application/json"
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
            422: "Unprocessable Content", 500: "Internal Server Error"}


class ApiError(Exception):
    """An error answered as JSON ``{"error": message, "problems": [...]}`` with ``status``."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


@dataclass(frozen=True)
class Request:
    """What a handler gets: the caller, path parameters, query parameters and the raw body."""

    principal: Principal
    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from exc


@dataclass(frozen=True)
class Response:
    """A handler's answer; ``chunks`` streams a large body instead of ``body``."""

    status: int
    body: Any = None
    content_type: str = JSON_TYPE
    chunks: Iterator[str] | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path template (``{name}`` segments), whether it writes, its handler's name."""

    method: str
    template: str
    writes: bool
    handler: str
    summary: str
    administrator_only: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


KIND_PATTERN = "|".join(KINDS)
ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", False, "openapi", "This OpenAPI 3 document"),
    Route("GET", "/whoami", False, "whoami", "The calling token's name and role"),
    Route("GET", "/registry/export", False, "export", "The whole registry as YAML, with password hashes",
          administrator_only=True),
    Route("GET", "/registry/{kind}", False, "list", "List the entities of a kind"),
    Route("POST", "/registry/{kind}", True, "create", "Create an entity from its registry-file entry"),
    Route("GET", "/registry/{kind}/{key}", False, "show", "One entity by its natural key"),
    Route("PUT", "/registry/{kind}/{key}", True, "update", "Replace an entity with a whole new entry"),
    Route("DELETE", "/registry/{kind}/{key}", True, "delete", "Delete an entity nothing refers to"),
    Route("POST", "/registry/services/{key}/users", True, "add_user", "Grant an IS the right to call the service"),
    Route("DELETE", "/registry/services/{key}/users/{senderId}", True, "remove_user", "Withdraw an IS's right"),
    Route("POST", "/registry/information-systems/{key}/reset-credentials", True, "reset_credentials",
          "Set a new password (random unless given) and return it once"),
    Route("GET", "/journals/logging", False, "logging", "Query the logging journal (paged)"),
    Route("GET", "/journals/logging/export", False, "logging_export", "Export the logging journal as CSV or JSON"),
    Route("GET", "/journals/registration", False, "registration", "The IS interaction registration journal (paged)"),
    Route("GET", "/audit", False, "audit", "The audit log of administrative changes (paged)"),
    Route("GET", "/maintenance", False, "maintenance", "Whether maintenance mode is on"),
    Route("PUT", "/maintenance", True, "set_maintenance", "Switch maintenance mode on or off: {on, reason}"),
    Route("GET", "/incidents", False, "incidents", "The incident journal, newest first (?open=true, paged)"),
    Route("PATCH", "/incidents/{number}", True, "record_incident", "Fill in Appendix 7 columns of an open incident"),
    Route("POST", "/incidents/{number}/close", True, "close_incident", "Close an incident: {measuresTaken, employeeName}"),
)


def _int(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not 0 <= number < 2**63:
        raise ApiError(400, f"{name} must be between 0 and 2^63 - 1")
    return number


def _time(query: dict[str, Any], name: str) -> datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None


def logging_query(query: dict[str, str]) -> LoggingQuery:
    """The logging-journal filters of a query string (camelCase names, as in the journal's JSON)."""
    return LoggingQuery(
        message_id=query.get("messageId"), correlation_id=query.get("correlationId"), sender=query.get("sender"),
        recipient=query.get("recipient"), service_id=query.get("serviceId"), state=query.get("state"),
        channel=query.get("channel"), session_id=query.get("sessionId"),
        since=_time(query, "from"), until=_time(query, "to"),
    )


def _page_body(page: Any) -> dict[str, Any]:
    return {"items": page.rows, "nextAfter": page.next_after}


@dataclass
class AdminApp:
    """The admin API application (one per process)."""

    engine: Engine
    registry: RegistryAdmin

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self._dispatch(environ)
        except ApiError as exc:
            body: dict[str, Any] = {"error": str(exc)}
            if exc.problems is not None:
                body["problems"] = exc.problems
            response = Response(exc.status, body)
            if exc.status == 401:
                return _send(start_response, response, [("WWW-Authenticate", 'Bearer realm="gateway-admin"')])
        except Exception:
            log.exception("admin API request failed")
            response = Response(500, {"error": "internal error"})
        return _send(start_response, response)

    def _dispatch(self, environ: dict[str, Any]) -> Response:
        # PEP 3333 hands the path over as latin-1 text; keys (sender ids) may be any UTF-8.
        path = (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace").rstrip("/") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        principal = self._principal(environ)  # before routing: an anonymous caller learns nothing
        matched = [(route, m) for route in ROUTES if (m := route.pattern.match(path))]
        matched = [(r, m) for r, m in matched if "kind" not in m.groupdict() or m["kind"] in KINDS]
        if not matched:
            raise ApiError(404, f"no endpoint {path}")
        chosen = next(((r, m) for r, m in matched if r.method == method), None)
        if chosen is None:
            raise ApiError(405, f"{method} not allowed on {path}")
        route, match = chosen
        if (route.writes or route.administrator_only) and not principal.can_write:
            raise ApiError(403, f"the {principal.role} role may not {route.summary[0].lower()}{route.summary[1:]}")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=False).items()}
        body = _read_body(environ) if method in ("POST", "PUT", "PATCH") else b""
        return getattr(self, "_" + route.handler)(Request(principal, match.groupdict(), query, body))

    def _principal(self, environ: dict[str, Any]) -> Principal:
        header = environ.get("HTTP_AUTHORIZATION") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "a bearer token is required")
        principal = authenticate(self.engine, token.strip())
        if principal is None:
            raise ApiError(401, "the token is unknown or revoked")
        return principal

    # -- handlers -------------------------------------------------------------------------------------------

    def _openapi(self, _request: Request) -> Response:
        from gateway.admin.openapi import openapi_document

        return Response(200, openapi_document())

    def _maintenance(self, _request: Request) -> Response:
        return Response(200, maintenance_state(self.engine).as_json())

    def _set_maintenance(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("on"), bool) or not isinstance(body.get("reason", ""), str | None):
            raise ApiError(422, 'send {"on": true|false, "reason": "…"}')
        _, after = set_maintenance(self.engine, body["on"], request.principal.name, body.get("reason"))
        return Response(200, after.as_json())

    def _incidents(self, request: Request) -> Response:
        open_only = request.query.get("open", "false").lower() == "true"
        limit, offset = min(_int(request.query, "limit") or 100, MAX_INCIDENTS_PAGE), _int(request.query, "offset") or 0
        return Response(200, {"items": [_incident_json(i) for i in incidents.list_incidents(self.engine, open_only, limit, offset)]})

    def _record_incident(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(422, "send a JSON object of Appendix 7 columns")
        values = {}
        for key, value in body.items():
            column = INCIDENT_FIELDS.get(key)
            if column is None:
                raise ApiError(422, f"{key} is not a column an administrator records; one of {', '.join(INCIDENT_FIELDS)}")
            if value is not None and not isinstance(value, str):
                raise ApiError(422, f"{key} must be a string")
            values[column] = _time({key: value}, key) if column.endswith("_at") else value
        with _incident_errors():
            return Response(200, _incident_json(incidents.record(self.engine, _number(request), **values)))

    def _close_incident(self, request: Request) -> Response:
        body = request.json() if request.body else {}
        body = body if isinstance(body, dict) else {}
        with _incident_errors():
            closed = incidents.close(self.engine, _number(request), body.get("measuresTaken"), body.get("employeeName"))
        return Response(200, _incident_json(closed))

    def _whoami(self, request: Request) -> Response:
        return Response(200, {"name": request.principal.name, "role": request.principal.role})

    def _export(self, _request: Request) -> Response:
        return Response(200, content_type="application/yaml; charset=utf-8", chunks=iter([export_registry(self.engine)]),
                        filename="registry.yaml")

    def _list(self, request: Request) -> Response:
        return Response(200, {"items": self.registry.list(request.params["kind"])})

    def _show(self, request: Request) -> Response:
        with _registry_errors():
            return Response(200, self.registry.get(request.params["kind"], request.params["key"]))

    def _create(self, request: Request) -> Response:
        with _registry_errors():
            return Response(201, self.registry.create(request.params["kind"], request.json(), request.principal.name))

    def _update(self, request: Request) -> Response:
        with _registry_errors():
            entry = self.registry.update(request.params["kind"], request.params["key"], request.json(), request.principal.name)
        return Response(200, entry)

    def _delete(self, request: Request) -> Response:
        with _registry_errors():
            self.registry.delete(request.params["kind"], request.params["key"], request.principal.name)
        return Response(204)

    def _add_user(self, request: Request) -> Response:
        with _registry_errors():
            return Response(201, self.registry.add_service_user(request.params["key"], request.json(), request.principal.name))

    def _remove_user(self, request: Request) -> Response:
        with _registry_errors():
            self.registry.remove_service_user(request.params["key"], request.params["senderId"], request.principal.name)
        return Response(204)

    def _reset_credentials(self, request: Request) -> Response:
        body = request.json() if request.body else None
        password = body.get("password") if isinstance(body, dict) else None
        with _registry_errors():
            new = self.registry.reset_credentials(request.params["key"], request.principal.name, password)
        # The password is in this answer only; it is stored as an Argon2 hash.
        return Response(200, {"senderId": request.params["key"], "password": new})

    def _logging(self, request: Request) -> Response:
        page = query_logging(self.engine, logging_query(request.query), _int(request.query, "after"),
                             _int(request.query, "limit") or 100)
        return Response(200, _page_body(page))

    def _logging_export(self, request: Request) -> Response:
        kind = request.query.get("format", "json")
        rows = iter_logging(self.engine, logging_query(request.query))
        if kind == "csv":
            return Response(200, content_type="text/csv; charset=utf-8", chunks=csv_chunks(rows), filename="logging-journal.csv")
        if kind == "json":
            return Response(200, content_type=JSON_TYPE, chunks=json_chunks(rows), filename="logging-journal.json")
        raise ApiError(400, "format must be csv or json")

    def _registration(self, request: Request) -> Response:
        page = query_registration(self.engine, request.query.get("service"), _int(request.query, "after"),
                                  _int(request.query, "limit") or 100)
        return Response(200, _page_body(page))

    def _audit(self, request: Request) -> Response:
        page = query_audit(self.engine, request.query.get("entity"), request.query.get("key"), request.query.get("actor"),
                           _int(request.query, "after"), _int(request.query, "limit") or 100)
        return Response(200, _page_body(page))


@contextmanager
def _registry_errors() -> Iterator[None]:
    """Turn registry errors into API errors: 404, 409, 422 with the problems by path."""
    try:
        yield
    except EntityNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except EntityConflict as exc:
        raise ApiError(409, str(exc)) from exc
    except EntryInvalid as exc:
        raise ApiError(422, "the entry is not valid", [{"path": p.path, "message": p.message} for p in exc.problems]) from exc
    except DataError as exc:
        # What the schema lets through but a column cannot hold (a text too long, a number too large).
        raise ApiError(422, "a value does not fit the registry's columns (too long or too large)") from exc
    except IntegrityError as exc:
        # Two administrators creating the same key at once, or a delete racing a reference to it.
        raise ApiError(409, "the change conflicts with another one made at the same time") from exc


MAX_INCIDENTS_PAGE = 1000
# The incident journal's Appendix 7 columns as the API names them.
INCIDENT_FIELDS = {
    "administratorNotifiedAt": "administrator_notified_at",
    "responsibleArrivedAt": "responsible_arrived_at",
    "delayCause": "delay_cause",
    "measuresTaken": "measures_taken",
    "sentAt": "sent_at",
    "employeeName": "employee_name",
    "signature": "signature",
}


def _incident_json(incident: incidents.Incident) -> dict[str, Any]:
    return {
        key: (iso_utc(value) if isinstance(value, datetime) else value)
        for key, value in {
            "number": incident.id, "openedAt": incident.opened_at, "kind": incident.kind,
            "deliveryPointId": incident.delivery_point_id, "messageId": incident.message_id,
            "messageReceivedAt": incident.message_received_at, "closedAt": incident.closed_at,
            **{api: getattr(incident, column) for api, column in INCIDENT_FIELDS.items()},
        }.items()
    }


def _number(request: Request) -> int:
    try:
        return int(request.params["number"])
    except ValueError:
        raise ApiError(404, f"no incident {request.params['number']}") from None


@contextmanager
def _incident_errors() -> Iterator[None]:
    try:
        yield
    except incidents.IncidentNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except incidents.IncidentClosed as exc:
        raise ApiError(409, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc


def _read_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH") or ""
    if not length.isdigit():
        body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
    elif int(length) > MAX_BODY_BYTES:
        raise ApiError(413, f"bodies are limited to {MAX_BODY_BYTES} bytes")
    else:
        body = environ["wsgi.input"].read(int(length))
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"bodies are limited to {MAX_BODY_BYTES} bytes")
    return body


def _send(start_response: StartResponse, response: Response, extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    headers = [("Content-Type", response.content_type), ("Cache-Control", "no-store"), *(extra or [])]
    if response.filename:
        headers.append(("Content-Disposition", f'attachment; filename="{response.filename}"'))
    status = f"{response.status} {_REASONS.get(response.status, '')}"
    if response.chunks is not None:
        start_response(status, headers)
        return (chunk.encode() for chunk in response.chunks)
    body = b"" if response.status == 204 else json.dumps(response.body, ensure_ascii=False).encode()
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def create_admin_app(settings: Settings, engine: Engine) -> AdminApp:
    """The admin API for ``settings`` on ``engine`` (the schema must already be migrated)."""
    del settings  # nothing configurable inside the application yet; where it listens is the server's business
    return AdminApp(engine=engine, registry=RegistryAdmin(engine))
