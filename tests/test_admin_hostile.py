"""The admin API against hostile input and failing exports, over real HTTP on loopback, on SQLite and PostgreSQL:
NUL characters, times that UTC cannot hold, JSON nested to blow the parser's stack, numbers beyond any id each
get a 4xx naming the problem; an export either completes or fails in a way an HTTP client notices."""
from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from sqlalchemy import Engine, delete, insert, select, text

from gateway.serving import BackgroundServer
from gateway.admin.app import create_admin_app
from gateway.admin.tokens import create_token
from journals.models import IncidentJournalEntry, LoggingJournalEntry
from journals.queries import EXPORT_BATCH
from tests.conftest import gateway_settings

HTTP = urllib3.PoolManager(retries=False, timeout=10.0)
LOGGING = LoggingJournalEntry.__table__
INCIDENT = IncidentJournalEntry.__table__
# A value each database keeps in a timestamp column but its driver cannot read back into Python.
UNREADABLE_TIME = {"sqlite": "'yesterday'", "postgresql": "'infinity'"}


@dataclass(frozen=True)
class Admin:
    url: str
    token: str

    def call(self, method: str, path: str, body: bytes | None = None, **options: Any) -> urllib3.BaseHTTPResponse:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return HTTP.request(method, self.url + path, body=body, headers=headers, **options)

    def error(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        answer = self.call(method, path, body)
        return answer.status, json.loads(answer.data)["error"]


@pytest.fixture(scope="module")
def admin(database_url: str, engine: Engine) -> Iterator[Admin]:
    token = create_token(engine, f"hostile-{uuid.uuid4().hex[:8]}", "administrator", "test")
    with BackgroundServer(create_admin_app(gateway_settings(database_url), engine)) as server:
        yield Admin(server.url, token)


@pytest.mark.parametrize(("path", "parameter"), [
    ("/journals/logging?messageId=a%00b", "messageId"),
    ("/journals/logging/export?format=csv&sender=%00", "sender"),
    ("/journals/registration?service=x%00", "service"),
    ("/audit?actor=%00", "actor"),
    ("/incidents?open=%00", "open"),
    ("/journals/logging?%00=1", "\\x00"),
])
def test_a_nul_in_a_query_parameter_is_refused_naming_it(admin: Admin, path: str, parameter: str) -> None:
    assert admin.error("GET", path) == (400, f"query parameter {parameter} contains a NUL character")


def test_a_nul_in_a_path_segment_or_a_body_is_refused_before_the_database_sees_it(admin: Admin) -> None:
    assert admin.error("GET", "/registry/services/a%00b") == (400, "path segment key contains a NUL character")
    assert admin.error("DELETE", "/registry/services/x/users/%00") == (400, "path segment senderId contains a NUL character")
    organisation = {"bin": "77" + str(uuid.uuid4().int)[:10], "name": "NUL\u0000Ltd", "shortName": "N"}
    status, error = admin.error("POST", "/registry/organisations", json.dumps(organisation).encode())
    assert (status, error) == (400, "the body's value at $.name contains a NUL character")
    assert admin.call("GET", f"/registry/organisations/{organisation['bin']}").status == 404
    assert admin.error("PUT", "/maintenance", b'{"on": false, "reason": "\\u0000"}') == (
        400, "the body's value at $.reason contains a NUL character")
    assert admin.error("PUT", "/maintenance", b'{"on": false, "reason": "\\ud800"}') == (
        400, "the body's value at $.reason contains a lone surrogate, which is not a character")


@pytest.mark.parametrize("path", ["/journals/logging", "/journals/logging/export"])
def test_times_utc_cannot_hold_are_refused_naming_the_parameter(admin: Admin, path: str) -> None:
    status, error = admin.error("GET", path + "?from=0001-01-01T00:00:00%2B05:00")
    assert status == 400 and error.startswith("from must lie between 0001-01-01 and 9999-12-31 once in UTC")
    status, error = admin.error("GET", path + "?to=9999-12-31T23:59:59-05:00")
    assert status == 400 and error.startswith("to must lie between 0001-01-01 and 9999-12-31 once in UTC")
    # The same calendar edges UTC can hold are answered.
    assert admin.call("GET", path + "?from=0001-01-01T00:00:00-05:00&to=9999-12-31T23:59:59%2B05:00").status == 200
    assert admin.call("GET", path + "?from=0001-01-01T00:00:00&to=9999-12-31T23:59:59").status == 200


def test_deep_or_non_standard_json_is_refused_naming_the_problem(admin: Admin) -> None:
    for body in (b"[" * 200_000, b"[" * 33 + b"]" * 33):
        for method, path in (("PUT", "/maintenance"), ("POST", "/registry/organisations"), ("PATCH", "/incidents/1")):
            assert admin.error(method, path, body) == (400, "the body nests deeper than 32 levels"), (method, path)
    assert admin.error("PUT", "/maintenance", b'{"on": false, "reason": NaN}') == (
        400, "the body is not JSON: NaN is not a JSON number")
    status, error = admin.error("PUT", "/maintenance", b" " * (1024 * 1024 + 1))
    assert status == 413 and "limited to 1048576 bytes" in error


def test_an_incident_number_beyond_any_id_is_not_found(admin: Admin) -> None:
    huge = str(2**64)
    assert admin.error("PATCH", f"/incidents/{huge}", b'{"delayCause": "x"}') == (404, f"no incident {huge}")
    assert admin.error("POST", f"/incidents/{huge}/close", b"{}") == (404, f"no incident {huge}")


def test_incident_values_a_column_cannot_hold_are_refused(admin: Admin, engine: Engine) -> None:
    with engine.begin() as connection:
        number = connection.execute(insert(INCIDENT).values(opened_at=datetime.now(UTC), kind="LATE_DELIVERY")).inserted_primary_key[0]
    try:
        status, error = admin.error("POST", f"/incidents/{number}/close", b'{"measuresTaken": 5}')
        assert (status, error) == (422, "measuresTaken must be a string")
        answer = admin.call("PATCH", f"/incidents/{number}", json.dumps({"delayCause": "x" * 2001}).encode())
        # SQLite keeps text of any length; PostgreSQL's column refuses it, which must be the caller's 422.
        assert answer.status == {"sqlite": 200, "postgresql": 422}[engine.dialect.name], answer.data
        assert admin.call("POST", f"/incidents/{number}/close", b'{"measuresTaken": "restarted"}').status == 200
    finally:
        with engine.begin() as connection:
            connection.execute(delete(INCIDENT).where(INCIDENT.c.id == number))


@pytest.fixture()
def journal_rows(engine: Engine) -> Iterator[tuple[str, list[int]]]:
    """Two more than an export batch of logging-journal rows from a sender of their own (each batch reads one row
    ahead, so the last row is read only by the second); removed afterwards."""
    sender = f"export-{uuid.uuid4().hex[:8]}"
    moment = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(insert(LOGGING), [
            {"channel": "SYNC", "state": "DELIVERED", "message_id": str(uuid.uuid4()), "sender": sender,
             "recipient": "gbdfl", "service_id": "GbdflPersonInfo", "received_at": moment, "sent_at": moment}
            for _ in range(EXPORT_BATCH + 2)
        ])
        ids = list(connection.scalars(select(LOGGING.c.id).where(LOGGING.c.sender == sender).order_by(LOGGING.c.id)))
    yield sender, ids
    with engine.begin() as connection:
        connection.execute(delete(LOGGING).where(LOGGING.c.sender == sender))


def corrupt_received_at(engine: Engine, row_id: int) -> None:
    with engine.begin() as connection:
        value = UNREADABLE_TIME[engine.dialect.name]
        connection.execute(text(f"UPDATE journal_logging SET received_at = {value} WHERE id = :id"), {"id": row_id})


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_an_export_completes(admin: Admin, journal_rows: tuple[str, list[int]], kind: str) -> None:
    sender, ids = journal_rows
    answer = admin.call("GET", f"/journals/logging/export?format={kind}&sender={sender}")
    assert answer.status == 200
    if kind == "json":
        assert [row["id"] for row in json.loads(answer.data)] == ids
    else:
        assert answer.data.decode().count("\r\n") == len(ids) + 1


def test_an_export_failing_midway_is_cut_off_where_a_client_notices(
    admin: Admin, engine: Engine, journal_rows: tuple[str, list[int]]
) -> None:
    sender, ids = journal_rows
    corrupt_received_at(engine, ids[-1])  # in the second batch: the first is already on its way
    answer = admin.call("GET", f"/journals/logging/export?format=csv&sender={sender}", preload_content=False)
    assert answer.status == 200
    received = bytearray()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for chunk in answer.stream(64 * 1024):
            received += chunk
    assert received.decode().count("\r\n") == EXPORT_BATCH + 1  # the header and the first batch, then the cut


def test_an_export_failing_before_its_first_byte_is_an_error_naming_the_row(
    admin: Admin, engine: Engine, journal_rows: tuple[str, list[int]]
) -> None:
    sender, ids = journal_rows
    corrupt_received_at(engine, ids[0])
    for path in (f"/journals/logging/export?format=csv&sender={sender}", f"/journals/logging/export?format=json&sender={sender}",
                 f"/journals/logging?sender={sender}"):
        status, error = admin.error("GET", path)
        assert status == 500, path
        assert error.startswith(f"journal_logging row id {ids[0]}: cannot read received_at ("), error
        assert error.endswith("'gateway journals verify' reports every such row")


def test_an_export_is_refused_to_http_1_0_which_cannot_tell_a_cut_off_stream(
    admin: Admin, engine: Engine, journal_rows: tuple[str, list[int]]
) -> None:
    sender, ids = journal_rows
    corrupt_received_at(engine, ids[-1])
    host, port = admin.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET /journals/logging/export?format=csv&sender={sender} HTTP/1.0\r\nHost: {host}\r\n"
                           f"Authorization: Bearer {admin.token}\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == b"505"
    assert "ask with HTTP/1.1" in json.loads(body)["error"]
