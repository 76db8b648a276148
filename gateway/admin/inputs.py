"""Reading what an admin API caller sends: query parameters, path parameters, the body and JSON in it.

Everything a caller sends is checked here before any handler or query sees it, so hostile input gets a 4xx naming
the parameter or the problem instead of a failure deep in a database driver: NUL characters (PostgreSQL refuses
them in text), lone surrogates (no database encoding holds them), times that cannot be expressed in UTC, JSON
nested deeper than any entry needs, NaN and Infinity (not JSON; PostgreSQL's JSON refuses them) and oversized
bodies.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from journals.times import OutOfRange, to_utc

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32  # a registry entry nests four levels; anything near Python's recursion limit is hostile
MAX_INTEGER = 2**63 - 1  # what a BIGINT column holds


class ApiError(Exception):
    """An error answered as JSON ``{"error": message, "problems": [...]}`` with ``status``."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored as text in the database, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not a character"
    return None


def _printable(name: str) -> str:
    return name.encode("unicode_escape").decode("ascii")[:100]


def query_parameters(query_string: str) -> dict[str, str]:
    """The query string as a dict (the last value of a repeated name wins); 400 naming a parameter whose name or
    value cannot be stored."""
    query = {name: values[-1] for name, values in parse_qs(query_string, keep_blank_values=False).items()}
    for name, value in query.items():
        problem = unstorable(name) or unstorable(value)
        if problem is not None:
            raise ApiError(400, f"query parameter {_printable(name)} {problem}")
    return query


def path_parameters(parameters: dict[str, str]) -> dict[str, str]:
    """The path's named segments; 400 naming a segment that cannot be stored."""
    for name, value in parameters.items():
        problem = unstorable(value)
        if problem is not None:
            raise ApiError(400, f"path segment {name} {problem}")
    return parameters


def integer_parameter(query: dict[str, str], name: str) -> int | None:
    """Query parameter ``name`` as a non-negative integer a BIGINT holds, or None when absent."""
    value = query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not 0 <= number <= MAX_INTEGER:
        raise ApiError(400, f"{name} must be between 0 and 2^63 - 1")
    return number


_BOOLEANS = {"true": True, "false": False}


def boolean_parameter(query: dict[str, str], name: str) -> bool:
    """Query parameter ``name`` as ``true`` or ``false`` (any case); false when absent."""
    value = query.get(name, "false").lower()
    if value not in _BOOLEANS:
        raise ApiError(400, f"{name} must be true or false")
    return _BOOLEANS[value]


def time_value(value: Any, name: str) -> datetime | None:
    """``value`` (an ISO 8601 date-time) as a datetime, in UTC if it has a zone, or None when None."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        # A zoned time is compared and stored as UTC, which must be able to hold it; a naive one is UTC already.
        return to_utc(moment) if moment.tzinfo is not None else moment
    except OutOfRange as exc:
        raise ApiError(400, f"{name} {exc}") from None
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, at most :data:`MAX_BODY_BYTES` (413 beyond), whether or not a length was declared."""
    length = environ.get("CONTENT_LENGTH") or ""
    if not length.isascii() or not length.isdigit():
        body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
    elif int(length) > MAX_BODY_BYTES:
        raise ApiError(413, f"bodies are limited to {MAX_BODY_BYTES} bytes")
    else:
        body = environ["wsgi.input"].read(int(length))
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"bodies are limited to {MAX_BODY_BYTES} bytes")
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body`` (an empty body is null); 400 naming what makes it unacceptable."""
    try:
        document = json.loads(body or b"null", parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    _check_document(document)
    return document


def _check_document(document: Any) -> None:
    """Walk ``document`` without recursion: refuse deep nesting and strings the database cannot store."""
    pending: list[tuple[Any, str, int]] = [(document, "$", 0)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := unstorable(key)) is not None:
                    raise ApiError(400, f"a key in the body at {_printable(path)} {problem}")
                pending.append((item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]", depth + 1))
        elif isinstance(value, str) and (problem := unstorable(value)) is not None:
            raise ApiError(400, f"the body's value at {_printable(path)} {problem}")
