"""The admin API's OpenAPI 3 document, built from the route table and the registry file's own models, so the
document cannot drift from what the API accepts."""
from __future__ import annotations

import functools
import re
from typing import Any

from pydantic.json_schema import models_json_schema

from gateway.admin.app import INCIDENT_FIELDS, ROUTES, Route
from gateway.admin.inputs import MAX_INTEGER
from registry.admin import KINDS
from registry.schema import ServiceUserEntry

REF = "#/components/schemas/{model}"
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PAGE = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}},
                                          "nextAfter": {"type": ["integer", "null"]}}}
_LOGGING_FILTERS = ("messageId", "correlationId", "sender", "recipient", "serviceId", "state", "channel", "sessionId")
_ID = {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {"kind": {"type": "string", "enum": list(KINDS)}, "number": _ID}
_TEXT = {"type": ["string", "null"]}
_OBJECT_BODIES: dict[str, dict[str, Any]] = {
    "set_maintenance": {"type": "object", "required": ["on"], "properties": {"on": {"type": "boolean"}, "reason": _TEXT}},
    "record_incident": {"type": "object", "additionalProperties": False, "properties": {
        api: {"type": ["string", "null"], "format": "date-time"} if column.endswith("_at") else _TEXT
        for api, column in INCIDENT_FIELDS.items()}},
    "close_incident": {"type": "object", "properties": {"measuresTaken": _TEXT, "employeeName": _TEXT}},
}


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", route.template):
        parameters.append({"name": name, "in": "path", "required": True, "schema": _PATH_SCHEMAS.get(name, {"type": "string"})})

    def query(name: str, schema: dict[str, Any], description: str = "") -> None:
        parameters.append({"name": name, "in": "query", "schema": schema, "description": description})

    if route.template.startswith("/journals/logging"):
        for name in _LOGGING_FILTERS:
            query(name, {"type": "string"}, "exact match")
        query("from", {"type": "string", "format": "date-time"}, "received at or after (inclusive)")
        query("to", {"type": "string", "format": "date-time"}, "received before (exclusive)")
    if route.template == "/journals/logging/export":
        query("format", {"type": "string", "enum": ["csv", "json"], "default": "json"})
    elif route.handler in ("logging", "registration", "audit"):
        query("after", _ID, "continue after this id (nextAfter of the previous page)")
        query("limit", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}, "0: the default")
    if route.handler == "incidents":
        query("open", {"type": "boolean", "default": False}, "only incidents not closed yet")
        query("limit", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}, "0: the default")
        query("offset", _ID, "skip this many")
    if route.handler == "registration":
        query("service", {"type": "string"})
    if route.handler == "audit":
        for name in ("entity", "key", "actor"):
            query(name, {"type": "string"})
    return parameters


def _body(route: Route) -> dict[str, Any] | None:
    if route.handler in ("create", "update"):
        schemas = [{"$ref": REF.format(model=kind.entry.__name__)} for kind in KINDS.values()]
        return {"required": True, "content": {"application/json": {"schema": {"oneOf": schemas}}},
                "description": "the entity's entry exactly as in the registry file (docs/registry.md), in JSON"}
    if route.handler == "add_user":
        return {"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(model="ServiceUserEntry")}}}}
    if route.handler == "reset_credentials":
        return {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"password": {"type": "string", "minLength": 8}}}}}}
    schema = _OBJECT_BODIES.get(route.handler)
    if schema is not None:
        return {"required": route.handler != "close_incident", "content": {"application/json": {"schema": schema}}}
    return None


def _responses(route: Route) -> dict[str, Any]:
    ok = {"201": {"description": "created"}} if route.handler in ("create", "add_user") else (
        {"204": {"description": "done"}} if route.method == "DELETE" else {"200": {"description": "OK"}})
    if route.handler in ("logging", "registration", "audit"):
        ok = {"200": {"description": "a page", "content": {"application/json": {"schema": _PAGE}}}}
    responses: dict[str, Any] = {**ok, "401": _ERROR}
    takes_input = bool(_parameters(route)) or _body(route) is not None
    for status, applies in (
        ("400", takes_input),  # a value the API refuses before anything else: NUL, a time outside UTC, bad JSON
        ("403", route.writes or route.administrator_only),
        ("404", route.writes or "{" in route.template),
        ("409", route.writes),
        ("413", _body(route) is not None),
        ("422", route.writes),
        ("505", route.streamed),  # asked with HTTP/1.0, which cannot show a stream was cut off
    ):
        if applies:
            responses[status] = _ERROR
    return responses


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin API."""
    models = [(kind.entry, "validation") for kind in KINDS.values()] + [(ServiceUserEntry, "validation")]
    _, definitions = models_json_schema(models, by_alias=True, ref_template=REF)
    schemas = dict(definitions.get("$defs", {}))
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}},
    }}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": route.handler, "summary": route.summary, "parameters": _parameters(route),
            "responses": _responses(route),
            "x-required-role": "administrator" if route.writes or route.administrator_only else "auditor",
        }
        body = _body(route)
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(route.template, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "E-government gateway admin API", "version": "1"},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "paths": paths,
    }
