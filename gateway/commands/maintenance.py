"""``gateway maintenance``: switch maintenance mode on or off for every gateway process, and show it."""
from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from gateway.config import Settings
from gateway.db import make_engine
from gateway.maintenance import maintenance_state, set_maintenance


@contextmanager
def _engine() -> Iterator[Engine]:
    engine = make_engine(Settings().database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _actor() -> str:
    """Who switched, for the audit log: the operating-system user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name known to the system (e.g. an anonymous container uid)
        return "cli:unknown"


@click.group("maintenance")
def maintenance_group() -> None:
    """Maintenance mode: while on, GET /health answers 503 so load balancers drain the gateway."""


@maintenance_group.command("on")
@click.option("--reason", help="why, shown in the health report and kept in the audit log")
def maintenance_on(reason: str | None) -> None:
    """Switch maintenance mode on (every process sees it within a second)."""
    with _engine() as engine:
        before, after = set_maintenance(engine, True, _actor(), reason)
    click.echo("maintenance mode on" + (f": {after.reason}" if after.reason else "") + (" (it was already on)" if before.enabled else ""))


@maintenance_group.command("off")
def maintenance_off() -> None:
    """Switch maintenance mode off."""
    with _engine() as engine:
        before, _ = set_maintenance(engine, False, _actor())
    click.echo("maintenance mode off" + ("" if before.enabled else " (it was already off)"))


@maintenance_group.command("status")
def maintenance_status() -> None:
    """Show the switch as JSON: on, reason, changed_at, changed_by."""
    with _engine() as engine:
        state = maintenance_state(engine)
    click.echo(json.dumps(state.as_json(), ensure_ascii=False))
