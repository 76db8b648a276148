"""Shared fixtures: a real database (SQLite file, or PostgreSQL via GATEWAY_DATABASE_URL), the provider
emulator and the gateway as real HTTP servers on loopback."""
from __future__ import annotations

import contextlib
import copy
import importlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, inspect, text

from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import make_engine, migrate
from gateway.endpoints.asgi import GatewayApp
from gateway.serving import BackgroundAsgiServer, BackgroundServer
from registry.credentials import hash_password
from registry.loader import apply_registry, parse_registry

from tests.wire import REPO_ROOT

TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_database(engine: Engine) -> None:
    """Drop every table (ours and Alembic's) and migrate from scratch."""
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    with engine.begin() as connection:
        if "alembic_version" in inspect(connection).get_table_names():
            connection.execute(text("DROP TABLE alembic_version"))
    migrate(engine)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("GATEWAY_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    reset_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def provider_server() -> Iterator[tuple[SyncProviderEmulator, str]]:
    emulator = SyncProviderEmulator()
    with BackgroundServer(emulator) as server:
        yield emulator, server.url


@pytest.fixture(scope="session")
def provider_emulator(provider_server: tuple[SyncProviderEmulator, str]) -> SyncProviderEmulator:
    return provider_server[0]


@pytest.fixture(scope="session")
def provider_url(provider_server: tuple[SyncProviderEmulator, str]) -> str:
    return provider_server[1]


@pytest.fixture()
def provider(provider_emulator: SyncProviderEmulator) -> Iterator[SyncProviderEmulator]:
    """The provider emulator, with default behaviour and an empty record for this test."""
    provider_emulator.behaviour = ProviderBehaviour()
    provider_emulator.received.clear()
    yield provider_emulator
    provider_emulator.behaviour = ProviderBehaviour()


PUSH_PATHS = ("provider", "initiator", "throttled", "flaky", "breaker", "slow", "bulk", "causes")


class PushRecipients:
    """One PUSH recipient emulator per path, behind one loopback server."""

    def __init__(self) -> None:
        self.by_path = {path: PushRecipientEmulator() for path in PUSH_PATHS}

    def __call__(self, environ, start_response):  # noqa: ANN001, ANN204 - WSGI
        name = (environ.get("PATH_INFO") or "/").strip("/")
        return self.by_path[name](environ, start_response)


@pytest.fixture(scope="session")
def push_server() -> Iterator[tuple[PushRecipients, str]]:
    recipients = PushRecipients()
    with BackgroundServer(recipients) as server:
        yield recipients, server.url


@pytest.fixture()
def push(push_server: tuple[PushRecipients, str]) -> Iterator[dict[str, PushRecipientEmulator]]:
    """The PUSH recipients by path, with default behaviour for this test."""
    for emulator in push_server[0].by_path.values():
        emulator.behaviour = RecipientBehaviour()
    yield push_server[0].by_path
    for emulator in push_server[0].by_path.values():
        emulator.behaviour = RecipientBehaviour()


BACKENDS = ("ecs", "ecert", "payments")


@pytest.fixture(scope="session")
def backend_servers() -> Iterator[dict[str, tuple[Any, str]]]:
    """The three back-office emulators, each a real HTTP server on loopback: (emulator, base URL) by name."""
    # The test registry names the backends' secrets as ${...} references, as a real one must.
    for name, value in (("ECS_SECRET", "secret-1"), ("ECERT_API_KEY", "ecert-demo-key"),
                        ("ECERT_JWS_KEY", "0123456789abcdef" * 4), ("PAYMENTS_TOKEN", "demo-agent-token")):
        os.environ.setdefault(f"GATEWAY_ADAPTER_TEST_{name}", value)
    emulators = {name: importlib.import_module(f"emulators.{name}").make_emulator() for name in BACKENDS}
    with contextlib.ExitStack() as stack:
        yield {name: (emulator, stack.enter_context(BackgroundServer(emulator)).url) for name, emulator in emulators.items()}


@pytest.fixture()
def backends(backend_servers: dict[str, tuple[Any, str]]) -> Any:
    """The backend emulators, their switches put back as they were after the test."""
    emulators = {name: emulator for name, (emulator, _) in backend_servers.items()}
    saved = {name: copy.deepcopy(emulator.switches) for name, emulator in emulators.items()}
    yield emulators
    for name, emulator in emulators.items():
        emulator.switches = saved[name]


def registry_text_for(provider_url: str, push_url: str = "http://127.0.0.1:9", backends: dict[str, str] | None = None) -> str:
    text = (TESTS / "test_registry.yaml").read_text(encoding="utf-8")
    for name in BACKENDS:
        text = text.replace(f"{{{name}}}", (backends or {}).get(name, "http://127.0.0.1:9"))
    return (
        text
        .replace("{provider}", provider_url)
        .replace("{push}", push_url)
        .replace("{closed}", f"http://127.0.0.1:{free_port()}")
        .replace("{smartbridge_hash}", hash_password("123"))
    )


@pytest.fixture(scope="session")
def loaded_registry(
    engine: Engine, provider_url: str, push_server: tuple[PushRecipients, str], backend_servers: dict[str, tuple[Any, str]]
) -> None:
    backends = {name: url for name, (_, url) in backend_servers.items()}
    apply_registry(engine, parse_registry(registry_text_for(provider_url, push_server[1], backends)))


def gateway_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url, "registry_refresh_seconds": 0.0, "contracts_dir": REPO_ROOT}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def gateway_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The gateway's own signing key and certificate, as PEM files."""
    from tests.pki import participant

    folder = tmp_path_factory.mktemp("gateway-key")
    key, cert = participant("990140000099")
    (folder / "gateway.key").write_bytes(key)
    (folder / "gateway.crt").write_bytes(cert)
    return folder / "gateway.key", folder / "gateway.crt"


class NationalCa:
    """The test national CA, its CRL file (rewritten by :meth:`revoke`), and where the gateway finds both."""

    def __init__(self, folder: Path) -> None:
        from gateway.security.pki import create_ca

        self.ca = create_ca()
        self.ca_file = folder / "ca.pem"
        self.crl_file = folder / "ca.crl"
        self.ca_file.write_bytes(self.ca.cert_pem)
        self.revoked: list[int] = []
        self.revoke()

    def revoke(self, *serials: int) -> None:
        from gateway.security.pki import create_crl

        self.revoked += serials
        self.crl_file.write_bytes(create_crl(self.ca, self.revoked))


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> NationalCa:
    return NationalCa(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def sync_url(gateway_url: str) -> str:
    return f"{gateway_url}/bip-sync/"


@pytest.fixture()
def async_url(gateway_url: str, delivery_worker: object) -> str:
    """The asynchronous channel, with the in-process delivery worker running."""
    return f"{gateway_url}/bip-async/"


@pytest.fixture(scope="session")
def gateway_app(
    database_url: str, engine: Engine, loaded_registry: None, gateway_key: tuple[Path, Path], test_pki: NationalCa
) -> Iterator[GatewayApp]:
    settings = gateway_settings(
        database_url, sync_timeout_seconds=5.0, max_body_bytes=256 * 1024, signing_key=gateway_key[0],
        signing_cert=gateway_key[1], trusted_ca_file=test_pki.ca_file, crl_sources=str(test_pki.crl_file),
        crl_refresh_seconds=0.2,
    )
    app = create_app(settings, engine=engine)
    yield app
    app.close()


@pytest.fixture(scope="session")
def gateway_url(gateway_app: GatewayApp) -> Iterator[str]:
    with BackgroundAsgiServer(gateway_app) as server:
        yield server.url


@pytest.fixture(scope="module")
def delivery_worker(database_url: str, engine: Engine, loaded_registry: None, gateway_key: tuple[Path, Path]) -> Iterator[object]:
    """An in-process delivery worker polling fast, with short retry delays, signing with the gateway's key."""
    from gateway.delivery.runner import BackgroundWorker

    settings = gateway_settings(
        database_url, delivery_poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.2,
        delivery_lease_margin_seconds=5.0, signing_key=gateway_key[0], signing_cert=gateway_key[1],
    )
    worker = BackgroundWorker(settings, engine)
    yield worker
    worker.close()
