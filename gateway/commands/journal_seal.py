"""``gateway journals seal / verify / archive``: tamper evidence for the journals (docs/tamper-evidence.md)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gateway.config import Settings
from gateway.db import make_engine
from gateway.security.keys import load_keys
from journals.archive import ArchiveRefused, archive, verify_archive
from journals.seal import seal
from journals.verify import VerifyReport, verify


def _signer(settings: Settings):  # noqa: ANN202 - an EnvelopeSigner
    signer = load_keys(settings).sealing
    if signer is None:
        raise click.ClickException("sealing and archiving sign with the gateway's key: set GATEWAY_SIGNING_KEY")
    return signer


def _pinned(settings: Settings, certificates: tuple[Path, ...]) -> list[bytes]:
    """The certificates a checkpoint's signer must be one of: those given, else the gateway's configured ones."""
    paths = certificates or tuple(p for p in (settings.signing_cert, settings.previous_signing_cert) if p is not None)
    return [path.read_bytes() for path in paths]


def _print(report: VerifyReport) -> None:
    for chain in report.chains:
        click.echo(chain.summary())
    if not report.signer_pinned:
        click.echo("note: signatures checked against the certificates in the checkpoints; pin the signer with --cert")


@click.group("journals")
def journals_seal_group() -> None:
    """The journals' tamper evidence: sealing, verification, archives."""


@journals_seal_group.command("seal")
def seal_command() -> None:
    """Seal the journal rows not sealed yet now (the delivery worker also does it every GATEWAY_SEAL_INTERVAL_SECONDS)."""
    settings = Settings()
    sealed = seal(make_engine(settings.database_url), _signer(settings))
    click.echo(", ".join(f"{table}: {count} rows sealed" for table, count in sealed.items()))


@journals_seal_group.command("verify")
@click.option("--archive", "archives", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="verify this archive file offline instead of the database (repeatable)")
@click.option("--cert", "certificates", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="PEM certificate checkpoints must be signed with (repeatable; default GATEWAY_SIGNING_CERT and "
                   "GATEWAY_PREVIOUS_SIGNING_CERT)")
def verify_command(archives: tuple[Path, ...], certificates: tuple[Path, ...]) -> None:
    """Check the journals' hash chains and signed checkpoints; name the first row edited, deleted or reordered.
    Exit status 1 on any problem."""
    settings = Settings()
    pinned = _pinned(settings, certificates)
    reports = [verify_archive(path, pinned) for path in archives] if archives else [verify(make_engine(settings.database_url), pinned)]
    for path, report in zip(archives or ("database",), reports, strict=True):
        if archives:
            click.echo(f"{path}:")
        _print(report)
    if not all(report.ok for report in reports):
        raise SystemExit(1)


@journals_seal_group.command("archive")
@click.option("--before", type=click.DateTime(), help="archive rows dated before this UTC time "
              "(default: now minus GATEWAY_JOURNAL_RETENTION_DAYS)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="where to write (default GATEWAY_ARCHIVE_DIR)")
def archive_command(before: datetime | None, directory: Path | None) -> None:
    """Move sealed rows older than the retention into signed files, which `verify --archive FILE` checks offline."""
    settings = Settings()
    cutoff = before.replace(tzinfo=UTC) if before is not None else datetime.now(UTC) - timedelta(days=settings.journal_retention_days)
    try:
        results = archive(make_engine(settings.database_url), _signer(settings), cutoff, directory or settings.archive_dir)
    except ArchiveRefused as refused:
        raise click.ClickException(str(refused)) from refused
    for result in results:
        click.echo(f"{result.table}: seq {result.first_seq}..{result.last_seq} -> {result.path}")
    if not results:
        click.echo(f"nothing sealed before {cutoff:%Y-%m-%d %H:%M} UTC to archive")
