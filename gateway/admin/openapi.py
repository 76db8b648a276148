"""The admin API's OpenAPI 3 document, built from the route table and the registry file's own models, so the
document cannot drift from what the API accepts."""
from __future__ import annotations

import functools
import re
from typing import Any

from pydantic.json_schema import models_json_schema

from gateway.admin.app import ROUTES, Route
from registry.admin import KINDS
from registry.schema import ServiceUserEntry

REF = "#/components/schemas/{model}"
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PAGE = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}},
                                          "nextAfter": {"type": ["integer", "null"]}}}
_LOGGING_FILTERS = ("messageId", "correlationId", "sender", "recipient", "serviceId", "state", "channel", "sessionId")


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", route.template):
        schema: dict[str, Any] = {"type": "string", "enum": list(KINDS)} if name == "kind" else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})

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
        query("after", {"type": "integer"}, "continue after this id (nextAfter of the previous page)")
        query("limit", {"type": "integer", "maximum": 1000, "default": 100})
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
    return None


def _responses(route: Route) -> dict[str, Any]:
    ok = {"201": {"description": "created"}} if route.handler in ("create", "add_user") else (
        {"204": {"description": "done"}} if route.method == "DELETE" else {"200": {"description": "OK"}})
    if route.handler in ("logging", "registration", "audit"):
        ok = {"200": {"description": "a page", "content": {"application/json": {"schema": _PAGE}}}}
    responses: dict[str, Any] = {**ok, "401": _ERROR}
    if route.writes or route.administrator_only:
        responses["403"] = _ERROR
    if route.writes:
        responses.update({"404": _ERROR, "409": _ERROR, "422": _ERROR})
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
