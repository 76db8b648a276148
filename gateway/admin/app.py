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
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from gateway.admin.inputs import (
    MAX_INTEGER,
    ApiError,
    boolean_parameter,
    integer_parameter,
    parse_json,
    path_parameters,
    query_parameters,
    read_body,
    time_value,
)
from gateway.admin.tokens import Principal, authenticate
from gateway.config import Settings
from gateway.maintenance import maintenance_state, set_maintenance
from journals import incidents
from journals.queries import (
    JournalUnreadable,
    LoggingQuery,
    csv_chunks,
    iter_logging,
    json_chunks,
    query_audit,
    query_logging,
    query_registration,
)
from registry.admin import KINDS, EntityConflict, EntityNotFound, EntryInvalid, RegistryAdmin
from registry.export import export_registry
from journals.times import iso_utc

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
JSON_TYPE = "application/json"
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
            422: "Unprocessable Content", 500: "Internal Server Error", 505: "HTTP Version Not Supported"}
# A streamed body has no length: only chunked transfer coding (HTTP/1.1) lets a client tell a stream cut off by
# a failure from a complete one; an HTTP/1.0 body simply ends when the connection closes.
STREAMING_PROTOCOLS = frozenset({"HTTP/1.1"})


@dataclass(frozen=True)
class Request:
    """What a handler gets: the caller, path parameters, query parameters and the raw body."""

    principal: Principal
    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, checked by :func:`gateway.admin.inputs.parse_json`."""
        return parse_json(self.body)


@dataclass(frozen=True)
class Response:
    """A handler's answer: ``body`` as JSON, or ``text`` as it is, or ``chunks`` streamed (a body of unknown
    length, which only HTTP/1.1 clients get: see :data:`STREAMING_PROTOCOLS`)."""

    status: int
    body: Any = None
    content_type: str = JSON_TYPE
    text: str | None = None
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
    streamed: bool = False  # answered with a body of unknown length: see STREAMING_PROTOCOLS

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
    Route("GET", "/journals/logging/export", False, "logging_export", "Export the logging journal as CSV or JSON",
          streamed=True),
    Route("GET", "/journals/registration", False, "registration", "The IS interaction registration journal (paged)"),
    Route("GET", "/audit", False, "audit", "The audit log of administrative changes (paged)"),
    Route("GET", "/maintenance", False, "maintenance", "Whether maintenance mode is on"),
    Route("PUT", "/maintenance", True, "set_maintenance", "Switch maintenance mode on or off: {on, reason}"),
    Route("GET", "/incidents", False, "incidents", "The incident journal, newest first (?open=true, paged)"),
    Route("PATCH", "/incidents/{number}", True, "record_incident", "Fill in Appendix 7 columns of an open incident"),
    Route("POST", "/incidents/{number}/close", True, "close_incident", "Close an incident: {measuresTaken, employeeName}"),
)


def logging_query(query: dict[str, str]) -> LoggingQuery:
    """The logging-journal filters of a query string (camelCase names, as in the journal's JSON)."""
    return LoggingQuery(
        message_id=query.get("messageId"), correlation_id=query.get("correlationId"), sender=query.get("sender"),
        recipient=query.get("recipient"), service_id=query.get("serviceId"), state=query.get("state"),
        channel=query.get("channel"), session_id=query.get("sessionId"),
        since=time_value(query.get("from"), "from"), until=time_value(query.get("to"), "to"),
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
            response = _started(self._dispatch(environ), environ.get("SERVER_PROTOCOL", ""))
        except JournalUnreadable as exc:
            log.error("admin API: %s", exc)
            response = Response(500, {"error": str(exc)})
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
        query = query_parameters(environ.get("QUERY_STRING", ""))
        body = read_body(environ) if method in ("POST", "PUT", "PATCH") else b""
        return getattr(self, "_" + route.handler)(Request(principal, path_parameters(match.groupdict()), query, body))

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
        open_only = boolean_parameter(request.query, "open")
        limit = min(integer_parameter(request.query, "limit") or 100, MAX_INCIDENTS_PAGE)
        offset = integer_parameter(request.query, "offset") or 0
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
            values[column] = time_value(value, key) if column.endswith("_at") else value
        with _incident_errors():
            return Response(200, _incident_json(incidents.record(self.engine, _number(request), **values)))

    def _close_incident(self, request: Request) -> Response:
        body = request.json() if request.body else {}
        body = body if isinstance(body, dict) else {}
        for key in ("measuresTaken", "employeeName"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise ApiError(422, f"{key} must be a string")
        with _incident_errors():
            closed = incidents.close(self.engine, _number(request), body.get("measuresTaken"), body.get("employeeName"))
        return Response(200, _incident_json(closed))

    def _whoami(self, request: Request) -> Response:
        return Response(200, {"name": request.principal.name, "role": request.principal.role})

    def _export(self, _request: Request) -> Response:
        return Response(200, content_type="application/yaml; charset=utf-8", text=export_registry(self.engine),
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
        page = query_logging(self.engine, logging_query(request.query), integer_parameter(request.query, "after"),
                             integer_parameter(request.query, "limit") or 100)
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
        page = query_registration(self.engine, request.query.get("service"), integer_parameter(request.query, "after"),
                                  integer_parameter(request.query, "limit") or 100)
        return Response(200, _page_body(page))

    def _audit(self, request: Request) -> Response:
        page = query_audit(self.engine, request.query.get("entity"), request.query.get("key"), request.query.get("actor"),
                           integer_parameter(request.query, "after"), integer_parameter(request.query, "limit") or 100)
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
    number = request.params["number"]
    if not number.isascii() or not number.isdigit() or int(number) > MAX_INTEGER:
        raise ApiError(404, f"no incident {number}")
    return int(number)


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
    except DataError as exc:
        raise ApiError(422, "a value does not fit the incident journal's columns (too long)") from exc


def _started(response: Response, protocol: str) -> Response:
    """``response`` with its stream's first chunk already made, so that whatever fails before the first byte
    (a query refused, a database down) is answered with an error status instead of a 200 cut short."""
    if response.chunks is None:
        return response
    if protocol not in STREAMING_PROTOCOLS:
        raise ApiError(505, f"this answer is streamed with chunked transfer coding, which {protocol or 'the request'} "
                            "lacks (a stream cut off by a failure would look complete): ask with HTTP/1.1")
    first = next(response.chunks, "")
    return replace(response, chunks=chain([first], response.chunks))


def _streamed(chunks: Iterator[str], filename: str | None) -> Iterator[bytes]:
    """Encode ``chunks``; a failure mid-way is raised on to the server, which then closes the connection without
    the terminating chunk, so the client sees an incomplete body rather than a short export that looks whole."""
    sent = 0
    try:
        for chunk in chunks:
            data = chunk.encode()
            sent += len(data)
            yield data
    except Exception as exc:
        log.error("admin API: %s aborted after %d bytes: %s", filename or "stream", sent, exc)
        raise


def _send(start_response: StartResponse, response: Response, extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    headers = [("Content-Type", response.content_type), ("Cache-Control", "no-store"), *(extra or [])]
    if response.filename:
        headers.append(("Content-Disposition", f'attachment; filename="{response.filename}"'))
    status = f"{response.status} {_REASONS.get(response.status, '')}"
    if response.chunks is not None:
        start_response(status, headers)
        return _streamed(response.chunks, response.filename)
    if response.text is not None:
        body = response.text.encode()
    else:
        body = b"" if response.status == 204 else json.dumps(response.body, ensure_ascii=False).encode()
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def create_admin_app(settings: Settings, engine: Engine) -> AdminApp:
    """The admin API for ``settings`` on ``engine`` (the schema must already be migrated)."""
    del settings  # nothing configurable inside the application yet; where it listens is the server's business
    return AdminApp(engine=engine, registry=RegistryAdmin(engine))
