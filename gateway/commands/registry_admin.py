"""``gateway registry …`` (one entity at a time, export, credential resets), ``gateway tokens …``, and the
logging-journal commands ``journals query`` / ``journals export`` (attached to the ``journals`` group).

The commands work on the database directly, as the operating-system user running them: that user is the
audit log's "who" (``cli:<login>``). Entries are read and shown in the registry file's YAML shape, so ``show``
output edited by hand is what ``update`` takes.
"""
from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml
from sqlalchemy import Engine

from gateway.admin.tokens import ROLES, TokenError, create_token, list_tokens, revoke_token
from gateway.config import Settings
from gateway.db import make_engine
from journals.queries import LoggingQuery, csv_chunks, iter_logging, json_chunks, query_logging
from journals.times import OutOfRange, to_utc
from registry.admin import KINDS, EntityConflict, EntityNotFound, EntryInvalid, RegistryAdmin
from registry.export import export_registry

KIND = click.Choice(list(KINDS))


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _engine() -> Iterator[Engine]:
    engine = make_engine(Settings().database_url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _admin() -> Iterator[RegistryAdmin]:
    """The registry operations, with their errors reported as the command's failure (exit code 1)."""
    with _engine() as engine:
        try:
            yield RegistryAdmin(engine)
        except EntryInvalid as exc:
            click.echo(f"{len(exc.problems)} problem(s):", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except (EntityNotFound, EntityConflict) as exc:
            raise click.ClickException(str(exc)) from exc


def _read_entry(file: str) -> Any:
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file}: not valid YAML: {exc}") from exc


def _echo_yaml(data: Any) -> None:
    click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120), nl=False)


@click.group()
def registry() -> None:
    """The service registry, one entity at a time (kinds: organisations, delivery-points, information-systems,
    services)."""


@registry.command("list")
@click.argument("kind", type=KIND)
def registry_list(kind: str) -> None:
    """List every entity of KIND (YAML, without credentials)."""
    with _admin() as admin:
        _echo_yaml(admin.list(kind))


@registry.command("show")
@click.argument("kind", type=KIND)
@click.argument("key")
def registry_show(kind: str, key: str) -> None:
    """Show the entity of KIND with natural key KEY (BIN, delivery point id, senderId or service key)."""
    with _admin() as admin:
        _echo_yaml(admin.get(kind, key))


@registry.command("create")
@click.argument("kind", type=KIND)
@click.option("--file", "file", required=True, help="the entry as YAML (as in a registry file), or - for stdin")
def registry_create(kind: str, file: str) -> None:
    """Create an entity of KIND from its registry-file entry."""
    with _admin() as admin:
        created = admin.create(kind, _read_entry(file), _actor())
    click.echo(f"created {kind} {created[KINDS[kind].key_alias]}")


@registry.command("update")
@click.argument("kind", type=KIND)
@click.argument("key")
@click.option("--file", "file", required=True, help="the whole new entry as YAML, or - for stdin")
def registry_update(kind: str, key: str, file: str) -> None:
    """Replace the entity of KIND with key KEY by a whole new entry (an IS given no password keeps its own)."""
    with _admin() as admin:
        admin.update(kind, key, _read_entry(file), _actor())
    click.echo(f"updated {kind} {key}")


@registry.command("delete")
@click.argument("kind", type=KIND)
@click.argument("key")
def registry_delete(kind: str, key: str) -> None:
    """Delete the entity of KIND with key KEY (refused while anything refers to it)."""
    with _admin() as admin:
        admin.delete(kind, key, _actor())
    click.echo(f"deleted {kind} {key}")


@registry.command("add-user")
@click.argument("service")
@click.argument("sender_id")
@click.option("--ordinal", type=int, default=1, show_default=True)
@click.option("--delivery-address")
@click.option("--publication-basis")
@click.option("--connection-basis", help="the joint decision connecting the user (registration journal column 9)")
@click.option("--owner-permission", help="the service owner's written permission (gateway-rules.md §2.3)")
def registry_add_user(service: str, sender_id: str, ordinal: int, delivery_address: str | None,
                      publication_basis: str | None, connection_basis: str | None, owner_permission: str | None) -> None:
    """Grant information system SENDER_ID the right to call SERVICE."""
    entry = {"informationSystem": sender_id, "ordinal": ordinal, "deliveryAddress": delivery_address,
             "publicationBasis": publication_basis, "connectionBasis": connection_basis,
             "ownerPermission": owner_permission}
    with _admin() as admin:
        admin.add_service_user(service, {k: v for k, v in entry.items() if v is not None}, _actor())
    click.echo(f"{sender_id} may now call {service}")


@registry.command("remove-user")
@click.argument("service")
@click.argument("sender_id")
def registry_remove_user(service: str, sender_id: str) -> None:
    """Withdraw information system SENDER_ID's right to call SERVICE."""
    with _admin() as admin:
        admin.remove_service_user(service, sender_id, _actor())
    click.echo(f"{sender_id} may no longer call {service}")


@registry.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def registry_export(file: Path | None) -> None:
    """Write the whole registry as YAML (to FILE, or stdout) that `gateway registry load` restores exactly.
    Credentials are exported as password hashes: keep the file as secret as the database."""
    with _engine() as engine:
        text = export_registry(engine)
    if file is None:
        click.echo(text, nl=False)
        return
    file.write_text(text, encoding="utf-8")
    file.chmod(0o600)
    click.echo(f"registry exported to {file}", err=True)


@registry.command("reset-credentials")
@click.argument("sender_id")
@click.option("--password-stdin", is_flag=True, help="read the new password from stdin instead of generating one")
def registry_reset_credentials(sender_id: str, password_stdin: bool) -> None:
    """Give information system SENDER_ID a new password; a generated one is printed once, and only then."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _admin() as admin:
        new = admin.reset_credentials(sender_id, _actor(), password)
    if password is None:
        click.echo(new)
    click.echo(f"password of {sender_id} reset; the old one is refused from the next message", err=True)


@click.group()
def tokens() -> None:
    """Admin API tokens (roles: administrator, auditor)."""


@tokens.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
def tokens_create(name: str, role: str) -> None:
    """Create token NAME with ROLE and print it: this is the only time it is shown."""
    with _engine() as engine:
        try:
            token = create_token(engine, name, role, _actor())
        except TokenError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(token)
    click.echo(f"token {name} ({role}) created; it is not stored and cannot be shown again", err=True)


@tokens.command("list")
def tokens_list() -> None:
    """List tokens: name, role, created, revoked (never the tokens themselves)."""
    with _engine() as engine:
        for info in list_tokens(engine):
            revoked = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
            click.echo(f"{info.name}\t{info.role}\tcreated {info.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke token NAME; it is refused from the next request on."""
    with _engine() as engine:
        try:
            revoke_token(engine, name, _actor())
        except TokenError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"token {name} revoked")


class UtcDateTime(click.DateTime):
    """A time on the command line, UTC unless a zone is given; one UTC cannot hold is refused like a typo."""

    def __init__(self) -> None:
        super().__init__(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return to_utc(super().convert(value, param, ctx))
        except OutOfRange as exc:
            self.fail(str(exc), param, ctx)


def _logging_options(command: Any) -> Any:
    """The logging-journal filters shared by ``journals query`` and ``journals export``."""
    for name in ("message-id", "correlation-id", "sender", "recipient", "service-id", "state", "channel", "session-id"):
        command = click.option(f"--{name}")(command)
    command = click.option("--from", "since", type=UtcDateTime(), help="received at or after (UTC unless a zone is given)")(command)
    return click.option("--to", "until", type=UtcDateTime(), help="received before")(command)


@click.command("query")
@_logging_options
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--after", type=int, help="continue after this id (printed as 'next after' by the previous page)")
def journals_query(limit: int, after: int | None, **filters: Any) -> None:
    """One page of the logging journal matching the filters, as JSON lines."""
    with _engine() as engine:
        page = query_logging(engine, LoggingQuery(**filters), after, limit)
    for row in page.rows:
        click.echo(json.dumps(row, ensure_ascii=False))
    if page.next_after is not None:
        click.echo(f"next after {page.next_after}", err=True)


@click.command("export")
@_logging_options
@click.option("--format", "kind", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="file (default stdout)")
def journals_export(kind: str, output: Any, **filters: Any) -> None:
    """Every logging-journal row matching the filters, as CSV or JSON."""
    with _engine() as engine:
        rows = iter_logging(engine, LoggingQuery(**filters))
        for chunk in csv_chunks(rows) if kind == "csv" else json_chunks(rows):
            output.write(chunk)
