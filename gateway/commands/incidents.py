"""``gateway incidents``: the incident journal for administrators (Appendix 7 columns, closing)."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

import click

from gateway.config import Settings
from gateway.db import make_engine
from journals import incidents


def _engine():  # noqa: ANN202 - a SQLAlchemy Engine
    return make_engine(Settings().database_url)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value}: give the time zone, e.g. 2026-11-23T10:15+05:00")
    return moment


def _show(incident: incidents.Incident) -> str:
    return json.dumps(asdict(incident), default=str, ensure_ascii=False)


@click.group("incidents")
def incidents_group() -> None:
    """The incident journal (gateway-rules.md §6.3)."""


@incidents_group.command("list")
@click.option("--open", "open_only", is_flag=True, help="only incidents not closed yet")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
def list_command(open_only: bool, limit: int, offset: int) -> None:
    """Incidents, newest first, one JSON object per line."""
    for incident in incidents.list_incidents(_engine(), open_only, limit, offset):
        click.echo(_show(incident))


@incidents_group.command("record")
@click.argument("number", type=int)
@click.option("--notified-at", help="when the administrator was notified (ISO 8601 with zone)")
@click.option("--arrived-at", help="when the responsible person arrived")
@click.option("--cause", help="cause of the delay")
@click.option("--measures", help="measures taken")
@click.option("--sent-at", help="when the message was finally sent")
@click.option("--employee", help="employee's full name")
@click.option("--signature", help="the employee's signature (or a reference to it)")
def record_command(number: int, notified_at: str | None, arrived_at: str | None, cause: str | None,
                   measures: str | None, sent_at: str | None, employee: str | None, signature: str | None) -> None:
    """Fill in Appendix 7 columns of open incident NUMBER."""
    values = {
        "administrator_notified_at": _when(notified_at),
        "responsible_arrived_at": _when(arrived_at),
        "delay_cause": cause,
        "measures_taken": measures,
        "sent_at": _when(sent_at),
        "employee_name": employee,
        "signature": signature,
    }
    try:
        incident = incidents.record(_engine(), number, **{k: v for k, v in values.items() if v is not None})
    except (incidents.IncidentNotFound, incidents.IncidentClosed) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_show(incident))


@incidents_group.command("close")
@click.argument("number", type=int)
@click.option("--measures", help="measures taken")
@click.option("--employee", help="employee's full name")
def close_command(number: int, measures: str | None, employee: str | None) -> None:
    """Close incident NUMBER."""
    try:
        incident = incidents.close(_engine(), number, measures, employee)
    except (incidents.IncidentNotFound, incidents.IncidentClosed) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_show(incident))
