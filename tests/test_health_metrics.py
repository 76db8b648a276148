"""GET /health (fields, maintenance mode, database gone, cost), GET /metrics after known traffic, multiprocess
metrics, and the ``maintenance`` CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from gateway.serving import BackgroundAsgiServer
from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
from emulators.sync_provider import SyncProviderEmulator
from gateway.app import create_app
from gateway.commands.maintenance import maintenance_group
from gateway.db import make_engine, migrate
from gateway.health import StatusProbe, read_database_status
from gateway.maintenance import maintenance_state, set_maintenance
from gateway.metrics import MetricsExporter, process_metrics
from journals.audit import AuditLogEntry
from tests.conftest import NationalCa, gateway_settings
from tests.test_async_channel import accepted, status_of
from tests.wire import HTTP, async_send, post, sync_request, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(url: str) -> tuple[int, bytes, str]:
    response = HTTP.request("GET", url)
    return response.status, response.data, response.headers.get("Content-Type", "")


def health(url: str) -> tuple[int, dict]:
    status, body, content_type = get(f"{url}/health")
    assert content_type == "application/json"
    return status, json.loads(body)


def scrape(url: str) -> Samples:
    status, body, content_type = get(f"{url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return parse(body.decode())


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture()
def maintenance_off(engine: Engine) -> Iterator[None]:
    """Whatever a test does, maintenance mode is off after it (other tests share the database)."""
    yield
    set_maintenance(engine, False, "test-teardown")


def test_health_reports_every_part(gateway_url: str, test_pki: NationalCa) -> None:
    status, report = health(gateway_url)
    assert status == 200, report
    assert report["status"] in ("ok", "degraded")
    assert report["database"] == "ok"
    assert report["maintenance"] == {"on": False, "reason": None, "since": None}
    assert report["signing_key"]["configured"] is True
    assert datetime.fromisoformat(report["signing_key"]["not_after"]) > datetime.fromisoformat(report["checked_at"])
    assert [crl["source"] for crl in report["crls"]] == [str(test_pki.crl_file)]
    assert isinstance(report["queue_depth"], int) and report["queue_depth"] >= 0
    assert isinstance(report["switched_off_delivery_points"], list)
    assert (report["status"] == "ok") == (report["problems"] == [])


def test_maintenance_mode_turns_health_503_and_back(gateway_url: str, engine: Engine, maintenance_off: None) -> None:
    set_maintenance(engine, True, "test", "database upgrade")
    # Another process's switch is seen once this process's one-second cache expires.
    status, report = wait_for(lambda: (answer := health(gateway_url))[0] == 503 and answer, seconds=5)
    assert report["status"] == "maintenance" and report["database"] == "ok"
    assert report["maintenance"]["on"] is True and report["maintenance"]["reason"] == "database upgrade"
    set_maintenance(engine, False, "test")
    status, report = wait_for(lambda: (answer := health(gateway_url))[0] == 200 and answer, seconds=5)
    assert report["maintenance"]["on"] is False


def test_health_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    app = create_app(gateway_settings(url), engine=engine)
    try:
        with BackgroundAsgiServer(app) as server:
            assert health(server.url)[0] == 200
            # The database disappears: its file is removed and the path can no longer be opened as one.
            engine.dispose()
            for leftover in tmp_path.glob("gateway.db*"):
                leftover.unlink()
            path.mkdir()
            status, report = wait_for(lambda: (answer := health(server.url))[0] == 503 and answer, seconds=5)
            assert report["status"] == "unavailable" and report["database"] == "unavailable"
            assert report["queue_depth"] is None and "the database is unavailable" in report["problems"]
            metrics = scrape(server.url)
            assert value(metrics, "gateway_database_up") == 0.0
    finally:
        app.close()
        engine.dispose()


def test_a_health_poll_costs_at_most_one_query_per_second(database_url: str, engine: Engine) -> None:  # noqa: ARG001 - migrated
    counting = make_engine(database_url)
    statements: list[str] = []
    event.listen(counting, "before_cursor_execute", lambda *args: statements.append(args[2]))
    clock = [100.0]
    probe = StatusProbe(counting, ttl=1.0, clock=lambda: clock[0])
    try:
        first = probe.current()
        assert first is not None and len(statements) == 1, statements
        for _ in range(50):
            assert probe.current() is first
        assert len(statements) == 1, "polls within the TTL must not query"
        clock[0] += 1.0
        assert probe.current() is not None  # the previous status, or the new one if its refresh was that quick
        wait_for(lambda: len(statements) == 2)  # refreshed in the background, once
        for _ in range(50):
            assert probe.current() is not None
        assert len(statements) == 2
    finally:
        counting.dispose()


def test_a_health_poll_never_waits_on_a_slow_database(database_url: str, engine: Engine) -> None:  # noqa: ARG001 - migrated
    slow = make_engine(database_url)
    hold = threading.Event()
    event.listen(slow, "before_cursor_execute", lambda *args: hold.wait(timeout=10))
    clock = [100.0]
    probe = StatusProbe(slow, ttl=1.0, clock=lambda: clock[0])
    try:
        hold.set()
        first = probe.current()
        hold.clear()  # from now on every query hangs until released
        clock[0] += 1.0
        started = time.monotonic()
        assert probe.current() is first
        assert time.monotonic() - started < 0.1, "the poll waited for the database"
        clock[0] += 10.0  # the refresh still hangs: past the stale limit the database counts as unavailable
        assert probe.current() is None
        hold.set()
        wait_for(lambda: probe.current() is not None)
        clock[0] += 60.0  # a quiet minute: the first poll after it reads the status itself, not a stale one
        statements: list[str] = []
        event.listen(slow, "before_cursor_execute", lambda *args: statements.append(args[2]))
        assert probe.current() is not None and len(statements) == 1
    finally:
        hold.set()
        slow.dispose()


def test_status_reads_breakers_queue_and_maintenance_in_one_query(engine: Engine, maintenance_off: None) -> None:
    from gateway.store.models import DeliveryPointState, DeliveryTask

    set_maintenance(engine, True, "test", "why")
    status = read_database_status(engine)
    with Session(engine) as session:
        pending = session.scalars(select(DeliveryTask).where(DeliveryTask.state == "PENDING")).all()
        states = session.scalars(select(DeliveryPointState)).all()
    assert status.queue_depth == len(pending)
    assert set(status.breakers) == {state.delivery_point_id for state in states}
    assert status.switched_off == sorted(state.delivery_point_id for state in states if state.switched_off)
    assert status.maintenance.enabled is True and status.maintenance.reason == "why"


def test_metrics_count_known_sync_traffic(gateway_url: str, provider: SyncProviderEmulator) -> None:
    sync_url = f"{gateway_url}/bip-sync/"
    before = scrape(gateway_url)
    for _ in range(3):
        assert post(sync_url, sync_request()).status == 200
    assert post(sync_url, sync_request(password="wrong")).error_code() == "SCE002"
    assert post(sync_url, sync_request(service_id="NoSuchService")).error_code() == "SCE004"
    after = scrape(gateway_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_messages_total", channel="SYNC", service="GbdflPersonInfo", outcome="DELIVERED") == 3
    assert moved("gateway_messages_total", channel="SYNC", service="-", outcome="SCE002") == 1
    assert moved("gateway_messages_total", channel="SYNC", service="-", outcome="SCE004") == 1
    assert moved("gateway_exchange_seconds_count", channel="SYNC") == 5
    assert moved("gateway_exchange_seconds_bucket", channel="SYNC", le="+Inf") == 5
    assert moved("gateway_exchange_seconds_sum", channel="SYNC") > 0
    assert not any(("service", "NoSuchService") in labels for _, labels in after), "an unknown service is never a label"
    assert value(after, "gateway_database_up") == 1.0
    assert ("gateway_queue_depth", frozenset()) in after and ("gateway_maintenance", frozenset()) in after


def test_metrics_count_async_acceptance_and_delivery_attempts(
    gateway_url: str, delivery_worker: object, push: dict[str, PushRecipientEmulator]
) -> None:
    async_url = f"{gateway_url}/bip-async/"
    push["flaky"].behaviour = RecipientBehaviour(fail_next=1)  # delivery point 13: one failure, then delivered
    before = scrape(gateway_url)
    message_id, _ = accepted(post(async_url, async_send("AsyncFlaky")))
    assert post(async_url, async_send("AsyncFlaky", password="wrong")).status == 500
    wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "DELIVERED")
    after = scrape(gateway_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_messages_total", channel="ASYNC", service="AsyncFlaky", outcome="ACCEPTED") == 1
    assert moved("gateway_messages_total", channel="ASYNC", service="-", outcome="SCE002") == 1
    assert moved("gateway_exchange_seconds_count", channel="ASYNC") == 2
    assert moved("gateway_delivery_attempts_total", delivery_point="13", result="failed") == 1
    assert moved("gateway_delivery_attempts_total", delivery_point="13", result="delivered") == 1
    assert value(after, "gateway_breaker_state", delivery_point="13") == 0.0


WRITER = """
import sys
from pathlib import Path
from gateway.metrics import process_metrics
metrics = process_metrics(Path(sys.argv[1]))
metrics.exchange("SYNC", "GbdflPersonInfo", "DELIVERED", 0.2)
metrics.delivery_attempt(10, "delivered")
"""


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WRITER, str(folder)], check=True, timeout=60)
    exporter = MetricsExporter(process_metrics(None), folder, lambda: None)
    samples = parse(exporter.render().decode())
    assert value(samples, "gateway_messages_total", channel="SYNC", service="GbdflPersonInfo", outcome="DELIVERED") == 2
    assert value(samples, "gateway_exchange_seconds_count", channel="SYNC") == 2
    assert value(samples, "gateway_delivery_attempts_total", delivery_point="10", result="delivered") == 2
    assert value(samples, "gateway_database_up") == 0.0


def test_maintenance_cli_on_status_off(database_url: str, engine: Engine, gateway_url: str, maintenance_off: None) -> None:
    runner = CliRunner()
    env = {"GATEWAY_DATABASE_URL": database_url}
    result = runner.invoke(maintenance_group, ["on", "--reason", "kernel update"], env=env)
    assert result.exit_code == 0, result.output
    assert "maintenance mode on: kernel update" in result.output
    status = json.loads(runner.invoke(maintenance_group, ["status"], env=env).output)
    assert status["on"] is True and status["reason"] == "kernel update" and status["changed_by"].startswith("cli:")
    wait_for(lambda: health(gateway_url)[0] == 503, seconds=5)

    result = runner.invoke(maintenance_group, ["off"], env=env)
    assert result.exit_code == 0 and result.output.strip() == "maintenance mode off"
    assert json.loads(runner.invoke(maintenance_group, ["status"], env=env).output)["on"] is False
    assert maintenance_state(engine).enabled is False
    wait_for(lambda: health(gateway_url)[0] == 200, seconds=5)
    with Session(engine) as session:
        audit = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.entity == "maintenance").order_by(AuditLogEntry.id.desc()).limit(2)
        ).all()
    assert [(row.before["on"], row.after["on"]) for row in audit] == [(True, False), (False, True)]
    assert audit[1].after["reason"] == "kernel update" and audit[1].actor.startswith("cli:")
