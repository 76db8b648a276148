"""The ``gateway-emulators`` command (``python -m emulators``): run an emulator in the foreground."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

DEFAULT_PORT = 8091  # the demo's sync-provider port
BACKEND_EMULATORS = {name: f"emulators.{name}" for name in ("ecs", "ecert", "payments")}


@click.group()
def main() -> None:
    """Stand-ins for the systems behind the gateway."""


@main.command("run")
@click.argument("name", type=click.Choice(["sync-provider", "push-recipient", "ocsp", *BACKEND_EMULATORS]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--delay-ms", type=int, default=0, help="answer this much later")
@click.option("--fault", is_flag=True, help="answer every request with a SOAP fault")
@click.option("--sign-data", is_flag=True, help="sign the business data of every answer")
@click.option("--ca-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="ocsp: the CA it answers for")
@click.option("--responder-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="ocsp: the unencrypted PEM key (RSA or EC) it signs with: the CA's, or a delegated responder's")
@click.option("--responder-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="ocsp: the delegated responder's certificate (absent: the key is the CA's)")
@click.option("--next-update-seconds", type=float, default=3600.0, show_default=True,
              help="ocsp: nextUpdate of its answers; 0 for none, as NCA's")
def run(
    name: str, host: str, port: int, delay_ms: int, fault: bool, sign_data: bool, ca_cert: Path | None,
    responder_key: Path | None, responder_cert: Path | None, next_update_seconds: float,
) -> None:
    """Run emulator NAME in the foreground."""
    from datetime import UTC, datetime

    from emulators.data_signer import DataSigner
    from emulators.push_recipient import PushRecipientEmulator, RecipientBehaviour
    from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
    from gateway.errors import ErrorInfo
    from gateway.serving import serve_forever

    app: object
    if name == "ocsp":
        from emulators.ocsp_responder import OcspResponderEmulator

        if ca_cert is None or responder_key is None:
            raise click.UsageError("the ocsp emulator needs --ca-cert and --responder-key")
        app = OcspResponderEmulator.from_files(ca_cert, responder_key, responder_cert, next_update_seconds or None)
    elif name in BACKEND_EMULATORS:
        app = importlib.import_module(BACKEND_EMULATORS[name]).make_emulator(delay_seconds=delay_ms / 1000)
    elif name == "push-recipient":
        app = PushRecipientEmulator(RecipientBehaviour(fail_next=10**9 if fault else 0, delay_seconds=delay_ms / 1000))
    else:
        behaviour = ProviderBehaviour(
            delay_seconds=delay_ms / 1000,
            fault=ErrorInfo("PROVIDER_DOWN", "Emulated provider failure", datetime.now(UTC)) if fault else None,
            sign_data=sign_data,
        )
        app = SyncProviderEmulator(behaviour=behaviour, signer=DataSigner.self_signed() if sign_data else None)
    click.echo(f"{name} emulator on http://{host}:{port}/ (pid {os.getpid()})")
    serve_forever(app, host, port)


if __name__ == "__main__":
    main()
