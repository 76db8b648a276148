"""Failures are logged one line each, with one traceback per kind of failure per interval, and never with the
statement's parameters; the delivery worker's scheduled jobs log the same way."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from gateway.db import make_engine
from gateway.delivery.runner import guarded
from gateway.failure_log import FailureLog


def raise_here(message: str) -> None:
    raise RuntimeError(message)


def raise_elsewhere(message: str) -> None:
    raise KeyError(message)


def failure(raiser, message: str) -> BaseException:  # noqa: ANN001 - one of the two raisers above
    try:
        raiser(message)
    except Exception as exc:  # noqa: BLE001 - the failure to be logged
        return exc
    raise AssertionError("did not raise")


def test_one_traceback_per_kind_of_failure_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    log = FailureLog(logging.getLogger("test.failures"), interval_seconds=3600)
    with caplog.at_level(logging.ERROR, logger="test.failures"):
        for n in range(20):
            log.failed(failure(raise_here, f"database away ({n})"), "request %s failed", n)
        log.failed(failure(raise_elsewhere, "another kind"), "request %s failed", 20)
    assert len(caplog.records) == 21
    assert [record.exc_info is not None for record in caplog.records] == [True] + [False] * 19 + [True]
    assert "request 7 failed: RuntimeError: database away (7)" in caplog.records[7].getMessage()


def test_the_traceback_comes_back_after_the_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    log = FailureLog(logging.getLogger("test.failures"), interval_seconds=0.0)
    with caplog.at_level(logging.ERROR, logger="test.failures"):
        log.failed(failure(raise_here, "x"), "first")
        log.failed(failure(raise_here, "x"), "second")
    assert all(record.exc_info is not None for record in caplog.records)


def test_a_database_error_names_the_driver_error_without_parameters(caplog: pytest.LogCaptureFixture, tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    log = FailureLog(logging.getLogger("test.failures"))
    secret = "-".join(("pep", "test", "password"))  # spelt apart: the traceback quotes this file's lines
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO nowhere VALUES (:secret)"), {"secret": secret})
    except Exception as exc:  # noqa: BLE001 - the failure to be logged
        with caplog.at_level(logging.ERROR, logger="test.failures"):
            log.failed(exc, "write failed")
    finally:
        engine.dispose()
    line = caplog.records[0].getMessage()
    assert line == "write failed: OperationalError: no such table: nowhere"
    assert secret not in caplog.text


def test_a_scheduled_job_that_keeps_failing_logs_a_line_per_run(caplog: pytest.LogCaptureFixture) -> None:
    job = guarded(lambda: raise_here("database away"), "polling for due deliveries")
    with caplog.at_level(logging.ERROR, logger="gateway.delivery.runner"):
        for _ in range(10):
            job()
    assert len(caplog.records) == 10
    assert sum(record.exc_info is not None for record in caplog.records) <= 1
    assert "polling for due deliveries failed; it runs again at its next interval" in caplog.records[-1].getMessage()
