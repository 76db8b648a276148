"""The admin API over real HTTP: tokens and roles, every registry operation, the audit log and registration
journal, a change reaching a second gateway process, and the journals for auditors."""
from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
import yaml
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from gateway.serving import BackgroundAsgiServer, BackgroundServer
from emulators.sync_provider import SyncProviderEmulator
from gateway.admin.app import ROUTES, create_admin_app
from gateway.admin.tokens import create_token, revoke_token
from gateway.app import create_app
from journals.audit import AuditLogEntry
from tests.wire import wait_for
from journals.models import LoggingJournalEntry
from registry.models import InformationSystem
from tests.conftest import gateway_settings
from tests.wire import post, sync_request

HTTP = urllib3.PoolManager(retries=False, timeout=10.0)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Any

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Admin:
    url: str
    admin_token: str
    admin_name: str
    auditor_token: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = "admin", raw: bytes | None = None) -> Answer:
        headers = {"Content-Type": "application/json"}
        bearer = {"admin": self.admin_token, "auditor": self.auditor_token}.get(token or "", token)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = HTTP.request(method, self.url + path, body=data, headers=headers)
        return Answer(response.status, response.data, response.headers)


@pytest.fixture(scope="module")
def admin(database_url: str, engine: Engine, loaded_registry: None) -> Iterator[Admin]:
    suffix = uuid.uuid4().hex[:8]
    admin_token = create_token(engine, f"api-admin-{suffix}", "administrator", "test")
    auditor_token = create_token(engine, f"api-auditor-{suffix}", "auditor", "test")
    app = create_admin_app(gateway_settings(database_url), engine)
    with BackgroundServer(app) as server:
        yield Admin(server.url, admin_token, f"api-admin-{suffix}", auditor_token)


def unique_bin() -> str:
    return "77" + str(uuid.uuid4().int)[:10]


def entity_set(suffix: str, bin_: str, point: int) -> dict[str, dict[str, Any]]:
    """A fresh organisation, delivery point, IS and service, none referring to the shared test registry."""
    return {
        "organisations": {"bin": bin_, "name": f"Test org {suffix}", "shortName": f"T{suffix}"},
        "delivery-points": {"id": point, "url": "http://127.0.0.1:9/provider", "callMode": 1},
        "information-systems": {"senderId": f"is-{suffix}", "organisation": bin_, "shortName": "IS",
                                "name": f"IS {suffix}", "password": "initial-password"},
        "services": {"key": f"Svc{suffix}", "name": "A test service", "description": "what it does",
                     "ownerIS": f"is-{suffix}", "interactionMode": "SYNC", "defaultDeliveryPoint": point,
                     "documents": [{"kind": "PUBLICATION_BASIS", "reference": "Order 7"}]},
    }


def test_every_request_needs_an_active_token(admin: Admin, engine: Engine) -> None:
    for path in ("/openapi.json", "/registry/services", "/journals/logging", "/audit", "/no/such/thing"):
        answer = admin.call("GET", path, token=None)
        assert answer.status == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert admin.call("GET", "/registry/services", token="gwa_not-a-real-token").status == 401
    assert admin.call("GET", "/registry/services", token=admin.admin_token[:-1]).status == 401
    name = f"short-lived-{uuid.uuid4().hex[:6]}"
    token = create_token(engine, name, "auditor", "test")
    assert admin.call("GET", "/whoami", token=token).json() == {"name": name, "role": "auditor"}
    revoke_token(engine, name, "test")
    assert admin.call("GET", "/whoami", token=token).status == 401


WRITES = [
    ("PUT", "/maintenance", {"on": True, "reason": "auditor tries"}),
    ("PATCH", "/incidents/1", {"delayCause": "auditor tries"}),
    ("POST", "/incidents/1/close", {}),
    ("POST", "/registry/organisations", {"bin": "771234567890", "name": "X", "shortName": "X"}),
    ("PUT", "/registry/organisations/990140000011", {"name": "Renamed", "shortName": "R"}),
    ("DELETE", "/registry/organisations/990140000066", None),
    ("POST", "/registry/delivery-points", {"id": 9999, "url": "http://127.0.0.1:9/x", "callMode": 1}),
    ("PUT", "/registry/delivery-points/1", {"url": "http://127.0.0.1:9/x", "callMode": 1}),
    ("DELETE", "/registry/delivery-points/16", None),
    ("POST", "/registry/information-systems", {"senderId": "x", "organisation": "990140000011", "shortName": "X", "name": "X"}),
    ("PUT", "/registry/information-systems/outsider", {"organisation": "990140000022", "shortName": "O", "name": "O"}),
    ("DELETE", "/registry/information-systems/outsider", None),
    ("POST", "/registry/services", {"key": "X", "name": "X", "ownerIS": "gbdfl", "interactionMode": "SYNC", "defaultDeliveryPoint": 1}),
    ("PUT", "/registry/services/TEST_SERVICE_ID", {"name": "X", "ownerIS": "gbdfl", "interactionMode": "SYNC", "defaultDeliveryPoint": 1}),
    ("DELETE", "/registry/services/TEST_SERVICE_ID", None),
    ("POST", "/registry/services/GbdflPersonInfo/users", {"informationSystem": "outsider"}),
    ("DELETE", "/registry/services/GbdflPersonInfo/users/pep", None),
    ("POST", "/registry/information-systems/pep/reset-credentials", None),
]


def test_the_write_list_covers_every_write_route() -> None:
    templates = {(r.method, r.template) for r in ROUTES if r.writes}
    covered = {(method, template) for method, template in templates
               if any(m == method and _matches(template, path) for m, path, _ in WRITES)}
    assert covered == templates


def _matches(template: str, path: str) -> bool:
    from gateway.admin.app import Route

    return bool(Route("GET", template, False, "", "").pattern.match(path))


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_an_auditor_token_is_refused_on_every_write(admin: Admin, engine: Engine, method: str, path: str, body: Any) -> None:
    before = admin.call("GET", "/registry/export").body
    answer = admin.call(method, path, body, token="auditor")
    assert answer.status == 403, answer.body
    assert admin.call("GET", "/registry/export").body == before, "an auditor's request changed the registry"


def test_an_auditor_reads_the_registry_and_journals_but_not_the_credential_export(admin: Admin) -> None:
    for path in ("/registry/services", "/registry/services/GbdflPersonInfo", "/registry/information-systems/pep",
                 "/journals/logging", "/journals/registration", "/audit", "/openapi.json"):
        assert admin.call("GET", path, token="auditor").status == 200, path
    pep = admin.call("GET", "/registry/information-systems/pep", token="auditor").json()
    assert pep["hasPassword"] is True and "passwordHash" not in pep and "password" not in pep
    assert admin.call("GET", "/registry/export", token="auditor").status == 403


def test_every_registry_operation_through_the_api(admin: Admin, engine: Engine) -> None:
    suffix = uuid.uuid4().hex[:6]
    bin_, point = unique_bin(), 7000 + int(suffix[:3], 16) % 1000
    entries = entity_set(suffix, bin_, point)
    for kind, entry in entries.items():
        answer = admin.call("POST", f"/registry/{kind}", entry)
        assert answer.status == 201, answer.body
        assert admin.call("POST", f"/registry/{kind}", entry).status == 409
    service_key, sender = f"Svc{suffix}", f"is-{suffix}"
    shown = admin.call("GET", f"/registry/services/{service_key}").json()
    assert shown["ownerIS"] == sender and shown["defaultDeliveryPoint"] == point
    assert service_key in [s["key"] for s in admin.call("GET", "/registry/services").json()["items"]]
    assert admin.call("GET", f"/registry/delivery-points/{point}").json()["url"] == "http://127.0.0.1:9/provider"

    # Update: a whole new entry; the IS keeps its password when none is given.
    changed = {**entries["information-systems"], "name": "Renamed IS"}
    del changed["password"]
    assert admin.call("PUT", f"/registry/information-systems/{sender}", changed).json()["name"] == "Renamed IS"
    assert admin.call("GET", f"/registry/information-systems/{sender}").json()["hasPassword"] is True
    assert admin.call("PUT", f"/registry/organisations/{bin_}", {"name": "Renamed org", "shortName": "RO"}).status == 200
    assert admin.call("PUT", f"/registry/delivery-points/{point}", {"url": "http://127.0.0.1:9/v2", "callMode": 1}).status == 200
    assert admin.call("PUT", f"/registry/services/{service_key}", {**entries["services"], "name": "Renamed"}).json()["name"] == "Renamed"
    assert admin.call("PUT", f"/registry/organisations/{bin_}", {"bin": unique_bin(), "name": "x", "shortName": "x"}).status == 422

    # Grant and withdraw a right to call.
    grant = admin.call("POST", f"/registry/services/{service_key}/users", {"informationSystem": "pep", "connectionBasis": "Act 12"})
    assert grant.status == 201, grant.body
    assert admin.call("POST", f"/registry/services/{service_key}/users", {"informationSystem": "pep"}).status == 409
    assert admin.call("POST", f"/registry/services/{service_key}/users", {"informationSystem": "nobody"}).status == 422
    assert admin.call("GET", f"/registry/services/{service_key}").json()["users"][0]["informationSystem"] == "pep"
    assert admin.call("DELETE", f"/registry/services/{service_key}/users/pep").status == 204
    assert admin.call("DELETE", f"/registry/services/{service_key}/users/pep").status == 404

    # Credential reset: a new password, shown once, in force.
    reset = admin.call("POST", f"/registry/information-systems/{sender}/reset-credentials").json()
    assert reset["senderId"] == sender and len(reset["password"]) >= 24
    assert admin.call("POST", f"/registry/information-systems/{sender}/reset-credentials", {"password": "short"}).status == 422
    assert admin.call("POST", "/registry/information-systems/nobody/reset-credentials").status == 404

    # Deletion is refused while something refers to the entity, then allowed in dependency order.
    assert admin.call("DELETE", f"/registry/organisations/{bin_}").status == 409
    assert admin.call("DELETE", f"/registry/delivery-points/{point}").status == 409
    assert admin.call("DELETE", f"/registry/information-systems/{sender}").status == 409
    for kind, key in (("services", service_key), ("information-systems", sender), ("delivery-points", point), ("organisations", bin_)):
        assert admin.call("DELETE", f"/registry/{kind}/{key}").status == 204, kind
        assert admin.call("GET", f"/registry/{kind}/{key}").status == 404
    assert admin.call("GET", "/registry/widgets").status == 404


def test_entries_get_the_loader_validation_with_paths(admin: Admin) -> None:
    answer = admin.call("POST", "/registry/organisations", {"bin": "123", "name": "", "shortName": "x", "extra": 1})
    assert answer.status == 422
    paths = {p["path"] for p in answer.json()["problems"]}
    assert {"bin", "name", "extra"} <= paths
    answer = admin.call("POST", "/registry/services", {
        "key": "Dangling", "name": "x", "ownerIS": "nobody", "interactionMode": "SYNC", "defaultDeliveryPoint": 424242,
        "routes": [], "users": [{"informationSystem": "ghost"}]})
    assert answer.status == 422
    assert {p["path"] for p in answer.json()["problems"]} == {"ownerIS", "defaultDeliveryPoint", "users[0].informationSystem"}
    answer = admin.call("POST", "/registry/services", {"key": "Async", "name": "x", "ownerIS": "gbdfl", "interactionMode": "ASYNC", "defaultDeliveryPoint": 1})
    assert answer.status == 422 and "sendMode" in answer.json()["problems"][0]["message"]
    assert admin.call("POST", "/registry/organisations", raw=b"{not json").status == 400


def test_changes_are_audited_and_publications_registered(admin: Admin) -> None:
    suffix = uuid.uuid4().hex[:6]
    bin_, point = unique_bin(), 8000 + int(suffix[:3], 16) % 1000
    entries = entity_set(suffix, bin_, point)
    entries["services"]["users"] = [{"informationSystem": "pep", "connectionBasis": "Joint act 3"}]
    for kind, entry in entries.items():
        assert admin.call("POST", f"/registry/{kind}", entry).status == 201
    sender = f"is-{suffix}"
    admin.call("PUT", f"/registry/information-systems/{sender}", {**entries["information-systems"], "name": "New name", "password": "another-password"})
    rows = admin.call("GET", f"/audit?key={sender}", token="auditor").json()["items"]
    assert [r["operation"] for r in rows] == ["CREATE", "UPDATE"]
    assert all(r["actor"] == admin.admin_name for r in rows)
    assert rows[0]["before"] is None and rows[0]["after"]["name"] == f"IS {suffix}"
    assert rows[1]["before"]["name"] == f"IS {suffix}" and rows[1]["after"]["name"] == "New name"
    assert rows[1]["after"]["credentialsChanged"] is True and "credentialsChanged" not in rows[0]["after"]
    assert "password" not in json.dumps(rows).replace("hasPassword", ""), "a secret reached the audit log"
    assert "another-password" not in json.dumps(rows)

    registrations = admin.call("GET", f"/journals/registration?service=Svc{suffix}", token="auditor").json()["items"]
    assert [r["event"] for r in registrations] == ["SERVICE_PUBLISHED", "USER_CONNECTED"]
    published, connected = registrations
    assert published["owner_organisation"] == f"Test org {suffix}" and published["publication_basis"] == "Order 7"
    assert connected["user_sender_id"] == "pep" and connected["connection_basis"] == "Joint act 3"
    admin.call("POST", f"/registry/services/Svc{suffix}/users", {"informationSystem": "outsider"})
    registrations = admin.call("GET", f"/journals/registration?service=Svc{suffix}").json()["items"]
    assert [r["user_sender_id"] for r in registrations] == [None, "pep", "outsider"]
    for kind, key in (("services", f"Svc{suffix}"), ("information-systems", sender), ("delivery-points", point), ("organisations", bin_)):
        assert admin.call("DELETE", f"/registry/{kind}/{key}").status == 204


def test_a_change_reaches_a_second_gateway_process(
    admin: Admin, database_url: str, engine: Engine, provider: SyncProviderEmulator
) -> None:
    second = create_app(gateway_settings(database_url), engine=engine)
    sender = f"late-{uuid.uuid4().hex[:6]}"
    try:
        with BackgroundAsgiServer(second) as server:
            url = f"{server.url}/bip-sync/"
            request = sync_request(sender_id=sender, password="late-password")
            assert post(url, request).error_code() == "SCE002"  # not registered yet
            assert admin.call("POST", "/registry/information-systems", {
                "senderId": sender, "organisation": "990140000022", "shortName": "L", "name": "Late", "password": "late-password",
            }).status == 201
            assert post(url, request).error_code() == "SCE003"  # registered, not a user of the service
            assert admin.call("POST", "/registry/services/GbdflPersonInfo/users", {"informationSystem": sender}).status == 201
            assert post(url, sync_request(sender_id=sender, password="late-password")).status == 200
            new_password = admin.call("POST", f"/registry/information-systems/{sender}/reset-credentials").json()["password"]
            assert post(url, sync_request(sender_id=sender, password="late-password")).error_code() == "SCE002"
            assert post(url, sync_request(sender_id=sender, password=new_password)).status == 200
    finally:
        second.close()
        admin.call("DELETE", f"/registry/services/GbdflPersonInfo/users/{sender}")
        admin.call("DELETE", f"/registry/information-systems/{sender}")


@pytest.fixture()
def known_traffic(engine: Engine) -> Iterator[tuple[str, list[int]]]:
    """Five journal rows of a service no one else uses, at known times."""
    service = f"Audited{uuid.uuid4().hex[:6]}"
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        LoggingJournalEntry(message_id=f"m{i}", correlation_id="c-1" if i < 3 else "c-2", channel="SYNC" if i % 2 else "ASYNC",
                            received_at=start + timedelta(minutes=i), sent_at=start + timedelta(minutes=i, seconds=1),
                            message_type="REQUEST", sender="pep" if i < 4 else "mobile", recipient="gbdfl",
                            state="DELIVERED" if i != 2 else "REJECTED", service_id=service, session_id=f"s{i}")
        for i in range(5)
    ]
    with Session(engine) as session, session.begin():
        session.add_all(rows)
        session.flush()
        ids = [r.id for r in rows]
    yield service, ids
    with Session(engine) as session, session.begin():
        session.execute(delete(LoggingJournalEntry).where(LoggingJournalEntry.id.in_(ids)))


def test_logging_journal_queries(admin: Admin, known_traffic: tuple[str, list[int]]) -> None:
    service, ids = known_traffic

    def ids_of(query: str) -> list[int]:
        answer = admin.call("GET", f"/journals/logging?serviceId={service}&{query}", token="auditor")
        assert answer.status == 200, answer.body
        return [row["id"] for row in answer.json()["items"]]

    assert ids_of("") == ids
    assert ids_of("messageId=m3") == [ids[3]]
    assert ids_of("correlationId=c-2") == ids[3:]
    assert ids_of("sender=mobile") == [ids[4]]
    assert ids_of("recipient=gbdfl&state=REJECTED") == [ids[2]]
    assert ids_of("from=2030-01-01T12:01:00Z&to=2030-01-01T12:03:00Z") == ids[1:3]
    assert ids_of("from=2030-01-01T17:02:00%2B05:00") == ids[2:]  # any zone, compared as instants
    assert ids_of("sender=nobody") == []
    first = admin.call("GET", f"/journals/logging?serviceId={service}&limit=2").json()
    assert [r["id"] for r in first["items"]] == ids[:2] and first["nextAfter"] == ids[1]
    second = admin.call("GET", f"/journals/logging?serviceId={service}&limit=2&after={first['nextAfter']}").json()
    last = admin.call("GET", f"/journals/logging?serviceId={service}&limit=2&after={second['nextAfter']}").json()
    assert [r["id"] for r in second["items"]] == ids[2:4] and [r["id"] for r in last["items"]] == ids[4:]
    assert last["nextAfter"] is None
    row = first["items"][0]
    assert row["received_at"] == "2030-01-01T12:00:00Z" and row["channel"] == "ASYNC" and row["session_id"] == "s0"
    assert admin.call("GET", "/journals/logging?from=yesterday").status == 400


def test_logging_journal_exports(admin: Admin, known_traffic: tuple[str, list[int]]) -> None:
    service, ids = known_traffic
    answer = admin.call("GET", f"/journals/logging/export?format=csv&serviceId={service}&sender=pep", token="auditor")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert [int(r["id"]) for r in table] == ids[:4]
    assert table[2]["state"] == "REJECTED" and table[0]["sent_at"] == "2030-01-01T12:00:01Z"
    answer = admin.call("GET", f"/journals/logging/export?format=json&serviceId={service}", token="auditor")
    exported = answer.json()
    assert [r["message_id"] for r in exported] == [f"m{i}" for i in range(5)]
    assert exported[4]["sender"] == "mobile"
    assert admin.call("GET", f"/journals/logging/export?format=xml&serviceId={service}").status == 400


def test_openapi_document_describes_every_route(admin: Admin) -> None:
    document = admin.call("GET", "/openapi.json", token="auditor").json()
    assert document["openapi"].startswith("3.")
    for route in ROUTES:
        assert route.method.lower() in document["paths"][route.template]
    assert "ServiceEntry" in document["components"]["schemas"]
    assert "ownerIS" in document["components"]["schemas"]["ServiceEntry"]["properties"]


def test_the_registry_export_is_loadable_yaml(admin: Admin, engine: Engine) -> None:
    answer = admin.call("GET", "/registry/export")
    assert answer.status == 200
    data = yaml.safe_load(answer.body)
    pep = next(s for s in data["informationSystems"] if s["senderId"] == "pep")
    with Session(engine) as session:
        assert pep["passwordHash"] == session.scalar(select(InformationSystem.password_hash).where(InformationSystem.sender_id == "pep"))
    assert session is not None and AuditLogEntry.__tablename__ == "journal_audit"


def test_maintenance_mode_from_the_admin_api_turns_health_503(admin: Admin, gateway_url: str) -> None:
    assert HTTP.request("GET", f"{gateway_url}/health").status == 200
    switched = admin.call("PUT", "/maintenance", {"on": True, "reason": "database upgrade"})
    assert switched.status == 200 and switched.json()["on"] is True
    try:
        assert admin.call("GET", "/maintenance", token="auditor").json()["reason"] == "database upgrade"
        wait_for(lambda: HTTP.request("GET", f"{gateway_url}/health").status == 503, seconds=5)
    finally:
        assert admin.call("PUT", "/maintenance", {"on": False}).status == 200
    wait_for(lambda: HTTP.request("GET", f"{gateway_url}/health").status == 200, seconds=5)
    assert admin.call("PUT", "/maintenance", {"reason": "no on"}).status == 422


def test_an_administrator_records_and_closes_an_incident_over_the_api(admin: Admin, engine: Engine) -> None:
    from sqlalchemy import insert

    from journals.models import IncidentJournalEntry

    with engine.begin() as connection:
        number = connection.execute(
            insert(IncidentJournalEntry).values(opened_at=datetime.now(UTC), kind="LATE_DELIVERY", message_id="m-api")
            .returning(IncidentJournalEntry.id)
        ).scalar_one()
    recorded = admin.call("PATCH", f"/incidents/{number}", {
        "administratorNotifiedAt": "2026-11-23T10:15:00+05:00", "delayCause": "recipient down", "employeeName": "A. Admin",
    })
    assert recorded.status == 200, recorded.body
    assert recorded.json()["delayCause"] == "recipient down"
    assert admin.call("PATCH", f"/incidents/{number}", {"openedAt": "2026-01-01T00:00:00Z"}).status == 422
    listed = admin.call("GET", "/incidents?open=true", token="auditor").json()["items"]
    assert number in [item["number"] for item in listed]
    closed = admin.call("POST", f"/incidents/{number}/close", {"measuresTaken": "restarted"})
    assert closed.status == 200 and closed.json()["closedAt"] is not None
    assert admin.call("PATCH", f"/incidents/{number}", {"delayCause": "afterwards"}).status == 409
    assert admin.call("POST", "/incidents/987654321/close", {}).status == 404
    assert admin.call("PATCH", f"/incidents/{number}", {"sentAt": 5}).status == 422
    assert admin.call("GET", "/incidents?limit=-1").status == 400
    assert admin.call("PUT", "/maintenance", {"on": True, "reason": 5}).status == 422


def test_incident_times_are_kept_in_utc(admin: Admin, engine: Engine) -> None:
    from sqlalchemy import insert

    from journals.models import IncidentJournalEntry

    with engine.begin() as connection:
        number = connection.execute(
            insert(IncidentJournalEntry).values(opened_at=datetime.now(UTC), kind="LATE_DELIVERY").returning(IncidentJournalEntry.id)
        ).scalar_one()
    answer = admin.call("PATCH", f"/incidents/{number}", {"sentAt": "2026-11-23T10:00:00+06:00"})
    assert answer.status == 200
    [listed] = [i for i in admin.call("GET", "/incidents?limit=1000").json()["items"] if i["number"] == number]
    assert datetime.fromisoformat(listed["sentAt"]) == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert admin.call("PATCH", f"/incidents/{number}", {"sentAt": "2026-11-23T10:00:00"}).status == 422


def test_values_too_large_for_the_database_are_refused_not_crashed(admin: Admin) -> None:
    too_big_point = {"id": 2**40, "url": "http://127.0.0.1:9/x", "callMode": 1}
    answer = admin.call("POST", "/registry/delivery-points", too_big_point)
    assert answer.status == 422, answer.body
    long_name = {"bin": unique_bin(), "name": "N" * 5000, "shortName": "S" * 5000}
    assert admin.call("POST", "/registry/organisations", long_name).status == 422
