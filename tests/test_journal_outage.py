"""The database goes away in the middle of a run: no provider is called without its REQUEST row being durable
first, every caller gets an answer (SCE909 while the journal cannot be written), and the gateway recovers when the
database comes back.

On PostgreSQL the gateway's own database stops taking connections and loses the ones it had; on SQLite the journal
table is taken away (renamed) while the rest of the database still answers, which is the sharper case: the
registry, the credentials and the provider are all there, only the journal is not.
"""
from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from gateway.serving import BackgroundAsgiServer
from emulators.sync_provider import SyncProviderEmulator
from gateway.app import create_app
from gateway.db import make_engine, migrate
from journals.models import LoggingJournalEntry
from registry.loader import apply_registry, parse_registry
from tests.conftest import gateway_settings, registry_text_for
from tests.wire import post, sync_request


class Outage:
    """A database of the gateway's own that can be taken down and brought back."""

    def __init__(self, url: str, engine: Engine, down: list[str], up: list[str], admin: Engine | None) -> None:
        self.url, self.engine, self._down, self._up, self._admin = url, engine, down, up, admin

    def _run(self, statements: list[str]) -> None:
        with (self._admin or self.engine).connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                connection.execute(text(statement))

    def stop(self) -> None:
        self._run(self._down)

    def start(self) -> None:
        self._run(self._up)


@pytest.fixture()
def outage(database_url: str, tmp_path: Path) -> Iterator[Outage]:
    if not database_url.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'outage.db'}"
        engine = make_engine(url)
        migrate(engine)
        yield Outage(url, engine, ["ALTER TABLE journal_logging RENAME TO journal_logging_away"],
                     ["ALTER TABLE journal_logging_away RENAME TO journal_logging"], None)
        engine.dispose()
        return
    name = f"gateway_outage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate(engine)
    terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    try:
        yield Outage(url, engine, [f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false", terminate],
                     [f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"], admin)
    finally:
        engine.dispose()
        with admin.connect() as connection, contextlib.suppress(Exception):
            connection.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
            connection.execute(text(terminate))
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


def forwarded_message_ids(provider: SyncProviderEmulator) -> set[str]:
    ids = set()
    for received in provider.received:
        found = etree.fromstring(received.body).find(".//{*}requestInfo/messageId")
        ids.add(found.text)
    return ids


def test_no_provider_call_without_its_journal_row_when_the_database_goes_away(
    outage: Outage, provider: SyncProviderEmulator, provider_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    apply_registry(outage.engine, parse_registry(registry_text_for(provider_url)))
    # The registry is read once and kept, as between two refreshes in production: the outage hits the journal.
    settings = gateway_settings(outage.url, registry_refresh_seconds=3600.0, sync_timeout_seconds=5.0)
    app = create_app(settings, engine=outage.engine)
    codes: list[str] = []
    during: list[logging.LogRecord] = []
    with BackgroundAsgiServer(app) as server, caplog.at_level(logging.WARNING):
        sync_url = f"{server.url}/bip-sync/"
        for call in range(30):
            if call == 10:
                caplog.clear()
                outage.stop()
            if call == 20:
                during = list(caplog.records)
                outage.start()
            answer = post(sync_url, sync_request())
            codes.append("SCSS001" if answer.status == 200 else answer.fault_info().findtext("errorCode"))
    app.close()
    assert codes[:10] == ["SCSS001"] * 10
    assert set(codes[10:20]) == {"SCE909"}, "while the journal is away the caller is told so"
    assert codes[-1] == "SCSS001", "the gateway recovers when the database comes back"
    with Session(outage.engine) as session:
        journalled = set(session.scalars(
            select(LoggingJournalEntry.message_id).where(LoggingJournalEntry.message_type == "REQUEST")
        ))
    called = forwarded_message_ids(provider)
    assert called - journalled == set(), "the provider ran requests that left no journal row"
    assert len(called) == codes.count("SCSS001")
    # No log flood: a line per failed request, and one traceback per kind of failure (PostgreSQL has two: the
    # connections it cut, then the connections it refuses).
    assert 10 <= len(during) <= 12, [record.getMessage()[:120] for record in during]
    assert 1 <= sum(record.exc_info is not None for record in during) <= 2
    assert sum(len(caplog.handler.format(record)) for record in during) < 16_000
