"""Property-based tests of the admin API from its own OpenAPI document (schemathesis): every operation, with
data that fits the document and data that does not, must be answered as the document says and never with a
server error. The API is the real one, served on loopback, called with an administrator token, on a database
of its own (a fresh SQLite file, or a PostgreSQL schema of its own), since the generated calls change the
registry, the maintenance switch and the incidents as they please.

Bounded for CI: few examples per operation, no deadline, derandomized, so a run is repeatable.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gateway.serving import BackgroundServer
from gateway.admin.app import ROUTES, create_admin_app
from gateway.admin.openapi import openapi_document
from gateway.admin.tokens import create_token
from gateway.db import make_engine
from tests.conftest import gateway_settings, reset_database

MAX_EXAMPLES = 30
# Not positive_data_acceptance: registry entries are also checked against each other (references must resolve,
# keys be unique), which no schema expresses, so schema-valid entries are rightly refused with 422. Not
# negative_data_rejection: journal page sizes beyond the maximum are clamped, as documented, not refused.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth]


def _own_database_url(database_url: str, engine: Engine, folder: Path, schema: str) -> str:
    """A database URL beside the suite's own: a new SQLite file, or a PostgreSQL schema first on the path."""
    if engine.dialect.name == "sqlite":
        return f"sqlite:///{folder / 'admin-fuzz.db'}"
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def fuzzed_admin(database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The admin API's URL and an administrator token, on a database of its own."""
    schema = f"admin_fuzz_{uuid.uuid4().hex[:8]}"
    url = _own_database_url(database_url, engine, tmp_path_factory.mktemp("admin-fuzz"), schema)
    own = make_engine(url, pool_size=5)
    try:
        reset_database(own)
        token = create_token(own, "fuzzer", "administrator", "test")
        with BackgroundServer(create_admin_app(gateway_settings(url), own), threads=4) as server:
            yield server.url, token
    finally:
        own.dispose()
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(scope="module")
def admin_schema(fuzzed_admin: tuple[str, str]) -> schemathesis.BaseSchema:
    url, token = fuzzed_admin
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {token}"},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
    })
    return schemathesis.openapi.from_url(f"{url}/openapi.json", config=config, headers={"Authorization": f"Bearer {token}"})


OPERATIONS = [(route.method, route.template) for route in ROUTES]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_admin_api_answers_as_documented(admin_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = admin_schema[path][method]
    documented = openapi_document()["paths"][path][method.lower()]
    # Schema-violating data needs something to get wrong: a body, or a parameter that is not just any string.
    constrained = any(parameter["schema"] != {"type": "string"} for parameter in documented["parameters"])
    negative = [GenerationMode.NEGATIVE] if constrained or "requestBody" in documented else []
    for mode in [GenerationMode.POSITIVE, *negative]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        answers_as_documented()
