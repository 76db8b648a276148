"""The ``gateway`` command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import urllib3

from gateway.commands import registry_admin
from gateway.commands.incidents import incidents_group
from gateway.commands.maintenance import maintenance_group
from gateway.commands.journal_seal import journals_seal_group
from gateway.commands.keys import keys_group
from gateway.commands.signatures import signatures_group
from gateway.config import Settings
from gateway.db import make_engine, migrate
from gateway.urls import wsdl_addresses
from registry.loader import RegistryFileError, load_registry_file, parse_registry

SAMPLE_REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "sample_registry.yaml"
DEMO_PROVIDER_PORT = 8091
DEMO_RECIPIENT_PORT = 8092
# The back-office emulators behind the sample registry's adapter delivery points, and the demo credentials
# those points name as ${GATEWAY_ADAPTER_DEMO_...} references.
DEMO_BACKENDS = {"ecs": 8093, "ecert": 8094, "payments": 8095}
DEMO_BACKEND_SECRETS = {
    "GATEWAY_ADAPTER_DEMO_ECS_SECRET": "secret-1",
    "GATEWAY_ADAPTER_DEMO_ECERT_API_KEY": "ecert-demo-key",
    "GATEWAY_ADAPTER_DEMO_ECERT_JWS_KEY": "0123456789abcdef" * 4,
    "GATEWAY_ADAPTER_DEMO_PAYMENTS_TOKEN": "demo-agent-token",
}


@click.group()
def main() -> None:
    """E-government integration gateway."""


@main.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema."""
    migrate(make_engine(Settings().database_url))
    click.echo("database schema is up to date")


@main.command()
@click.option("--host", help="address to listen on (GATEWAY_HOST)")
@click.option("--port", type=int, help="port to listen on (GATEWAY_PORT)")
@click.option("--workers", type=int, help="worker processes (GATEWAY_WORKERS)")
@click.option("--threads", type=int, help="threads per worker for blocking work (GATEWAY_THREADS)")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Run the gateway under uvicorn, with a delivery worker beside it unless GATEWAY_DELIVERY_IN_SERVE=false."""
    options = {"host": host, "port": port, "workers": workers, "threads": threads}
    # The server's worker processes read their settings from the environment: the options go there.
    os.environ.update({f"GATEWAY_{name.upper()}": str(value) for name, value in options.items() if value is not None})
    settings = _settings()
    migrate(make_engine(settings.database_url))
    _run_server(settings)


@main.command()
def worker() -> None:
    """Deliver asynchronous messages (PUSH) and status notifications until stopped."""
    from gateway.delivery.runner import run_worker_forever

    settings = Settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    click.echo(f"delivery worker started ({settings.delivery_concurrency} deliveries at once, database {_safe_url(settings.database_url)})")
    run_worker_forever(settings, engine)


@main.group()
def delivery() -> None:
    """Delivery points at run time."""


@delivery.command("enable")
@click.argument("point", type=int)
def delivery_enable(point: int) -> None:
    """Switch delivery point POINT back on after its breaker switched it off; its queued messages go out."""
    from gateway.delivery.guard import DeliveryGuard
    from gateway.store.messages import MessageStore
    from journals.logging_journal import LoggingJournal
    from registry.snapshot import build_snapshot

    settings = Settings()
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        if not DeliveryGuard(engine, settings.breaker_probe_seconds).switch_on(point, "Switched on by an administrator", connection):
            click.echo(f"delivery point {point} is not switched off")
            return
        MessageStore(engine, LoggingJournal(engine)).resume_point(connection, point, build_snapshot(engine))
    click.echo(f"delivery point {point} switched on; its queued messages are due now")


@main.command()
@click.option("--port", type=int, help="gateway port (GATEWAY_PORT)")
def demo(port: int | None) -> None:
    """The embedded default: SQLite, the sample registry, the emulators, the gateway and its delivery worker, with
    a test PKI in var/pki (created on first run) so that the sample services show signed traffic, RSA and GOST."""
    from gateway.commands.demo_pki import OCSP_PORT, prepare_demo_pki, show_gost_exchange

    ocsp_arguments = prepare_demo_pki(Path("var/pki"))
    # Several server workers answer /metrics: they share their counts through this folder.
    os.environ.setdefault("GATEWAY_METRICS_DIR", "var/metrics")
    if port is not None:
        os.environ["GATEWAY_PORT"] = str(port)  # the server's worker processes read it there
    settings = _settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    summary = load_registry_file(engine, SAMPLE_REGISTRY)
    engine.dispose()
    click.echo(f"sample registry loaded: {summary.services} services, {summary.information_systems} information systems")
    for name, value in DEMO_BACKEND_SECRETS.items():
        os.environ.setdefault(name, value)
    ports = {"sync-provider": DEMO_PROVIDER_PORT, "push-recipient": DEMO_RECIPIENT_PORT, **DEMO_BACKENDS}
    # The emulators are a package of their own (the gateway never imports them): started by module name.
    emulators = [
        (emulator_port, subprocess.Popen([sys.executable, "-m", "emulators", "run", name, "--port", str(emulator_port)]))
        for name, emulator_port in ports.items()
    ]
    emulators.append((OCSP_PORT, subprocess.Popen([sys.executable, "-m", "emulators", *ocsp_arguments])))
    try:
        for emulator_port, process in emulators:
            _wait_for(f"http://127.0.0.1:{emulator_port}/", process)
        click.echo(f"provider emulator on http://127.0.0.1:{DEMO_PROVIDER_PORT}/provider, "
                   f"PUSH recipient emulator on http://127.0.0.1:{DEMO_RECIPIENT_PORT}/push, backend emulators "
                   + ", ".join(f"{name} http://127.0.0.1:{backend_port}/" for name, backend_port in DEMO_BACKENDS.items())
                   + f", OCSP responder http://127.0.0.1:{OCSP_PORT}/")
        _run_server(settings, lambda: show_gost_exchange(f"http://{settings.host}:{settings.port}/bip-sync-wss-gost/"))
    finally:
        for _, process in emulators:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _run_server(settings: Settings, when_up: Callable[[], None] | None = None) -> None:
    from gateway.metrics import prepare_metrics_dir
    from gateway.server import GatewayServer

    def announce() -> None:
        click.echo(f"gateway listening on {settings.host}:{settings.port} (database {_safe_url(settings.database_url)})")
        for address in wsdl_addresses(settings):
            click.echo(f"WSDL: {address}")
        if when_up is not None:
            when_up()

    if settings.metrics_dir is not None:
        # Before any process starts: every server worker and the delivery worker inherit the folder.
        prepare_metrics_dir(settings.metrics_dir)
    helpers = []
    if settings.delivery_in_serve:
        helpers.append(subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"]))
    if settings.admin_in_serve:
        helpers.append(subprocess.Popen([sys.executable, "-m", "gateway.admin"]))
        click.echo(f"admin API on http://{settings.admin_host}:{settings.admin_port}/ (openapi.json; tokens: gateway tokens create)")
    # uvicorn raises the SIGTERM it caught again once it has shut down: as an exception, so that the helpers
    # below are stopped too instead of being orphaned by the default handler's immediate exit.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        GatewayServer(settings, when_ready=announce).run()
    finally:
        for process in helpers:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _exit_on_sigterm(*_: object) -> None:
    raise SystemExit(0)


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    http = urllib3.PoolManager(retries=False)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"emulator exited with code {process.returncode}")
        try:
            http.request("GET", url, timeout=1.0)
            return
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
    raise click.ClickException(f"emulator did not start on {url}")


@main.group()
def registry() -> None:
    """The service registry."""


@registry.command("load")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--check", is_flag=True, help="validate only; change nothing")
def registry_load(file: Path, check: bool) -> None:
    """Validate a YAML registry FILE and apply it (upsert by natural keys)."""
    try:
        if check:
            parse_registry(file.read_text(encoding="utf-8"))
            click.echo(f"{file}: valid")
            return
        engine = make_engine(Settings().database_url)
        migrate(engine)
        summary = load_registry_file(engine, file)
    except RegistryFileError as exc:
        click.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"{file}: loaded {summary.organisations} organisations, {summary.delivery_points} delivery points, "
        f"{summary.information_systems} information systems, {summary.services} services"
    )


main.add_command(incidents_group)
main.add_command(maintenance_group)
main.add_command(journals_seal_group)
main.add_command(signatures_group)
main.add_command(keys_group)
main.add_command(registry_admin.tokens)
for _command in registry_admin.registry.commands.values():
    registry.add_command(_command)
journals_seal_group.add_command(registry_admin.journals_query)
journals_seal_group.add_command(registry_admin.journals_export)


if __name__ == "__main__":
    main()
