"""Per-delivery-point throttle and breaker, kept in the database so every worker process agrees.

Throttle (gateway-rules.md Q1): at most ``throttlingRequestCount`` calls in any window of ``throttlingTimeout``
seconds, as an exact sliding window over the start times of the recent calls, widened by 10 % so that the
recipient, which sees the calls arrive with some jitter, never counts more either. A call over the limit is not
made and not counted as a failure: the caller is told how long to wait.

Breaker (Q4, Q5): failed calls are counted in a sliding window of ``maxErrorInterval`` seconds; at ``maxErrors``
the delivery point is switched off, its messages stay queued, and an incident is opened. It comes back by an
administrator (:meth:`DeliveryGuard.switch_on`) or, when configured, after a successful half-open probe.

Each decision locks the point's state row first (a no-op UPDATE takes the row lock on PostgreSQL and the write
lock on SQLite), so concurrent workers see each other's calls and failures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store.models import DeliveryPointState
from journals.models import IncidentJournalEntry
from registry.snapshot import DeliveryPointView


THROTTLE_WINDOW_SAFETY = 1.1


@dataclass(frozen=True)
class FailureOutcome:
    """What recording a failure did: whether it switched the point off, and the incident it opened."""

    switched_off: bool
    incident_id: int | None = None


def _locked_state(connection: Connection, point_id: int) -> DeliveryPointState:
    table = DeliveryPointState.__table__
    lock = update(table).where(table.c.delivery_point_id == point_id).values(delivery_point_id=table.c.delivery_point_id)
    if not connection.execute(lock).rowcount:
        # First use of this point: create its row; a concurrent creator may win, which is as good.
        dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            dialect_insert(table)
            .values(delivery_point_id=point_id, recent_calls=[], recent_failures=[], switched_off=False)
            .on_conflict_do_nothing()
        )
        connection.execute(lock)
    return connection.execute(select(table).where(table.c.delivery_point_id == point_id)).one()


class DeliveryGuard:
    """Throttle and breaker decisions for delivery points."""

    def __init__(self, engine: Engine, probe_after_seconds: float) -> None:
        self._engine = engine
        self._probe_after = probe_after_seconds

    def take_call_slot(self, point: DeliveryPointView) -> float:
        """Take a call slot under the point's throttle: 0 when the call may go now, else seconds to wait."""
        if not (point.throttling_enabled and point.throttling_request_count and point.throttling_timeout_sec):
            return 0.0
        window, limit = float(point.throttling_timeout_sec) * THROTTLE_WINDOW_SAFETY, point.throttling_request_count
        with self._engine.begin() as connection:
            state = _locked_state(connection, point.id)
            clock = time.time()
            calls = [t for t in state.recent_calls if t > clock - window]
            if len(calls) >= limit:
                return calls[-limit] + window - clock
            calls.append(clock)
            connection.execute(
                update(DeliveryPointState.__table__)
                .where(DeliveryPointState.delivery_point_id == point.id)
                .values(recent_calls=calls[-limit:])
            )
        return 0.0

    def record_failure(self, point: DeliveryPointView, reason: str, connection: Connection) -> FailureOutcome:
        """Count a failed call within the caller's transaction; switch the point off at ``maxErrors``."""
        if not (point.max_errors and point.max_error_interval_sec):
            return FailureOutcome(False)
        state = _locked_state(connection, point.id)
        clock = time.time()
        failures = [t for t in state.recent_failures if t > clock - point.max_error_interval_sec] + [clock]
        values: dict[str, object] = {"recent_failures": failures[-point.max_errors :]}
        outcome = FailureOutcome(False)
        if len(failures) >= point.max_errors and not state.switched_off:
            switched_at = datetime.now(UTC)
            incident_id = connection.execute(
                insert(IncidentJournalEntry).values(
                    opened_at=switched_at,
                    kind="BREAKER_TRIPPED",
                    delivery_point_id=point.id,
                    delay_cause=f"{len(failures)} failed deliveries within {point.max_error_interval_sec} s; last: {reason}"[:2000],
                ).returning(IncidentJournalEntry.id)
            ).scalar_one()
            values.update(
                switched_off=True,
                switched_off_at=switched_at,
                probe_after=switched_at + timedelta(seconds=self._probe_after) if self._probe_after > 0 else None,
                incident_id=incident_id,
            )
            outcome = FailureOutcome(True, incident_id)
        connection.execute(
            update(DeliveryPointState.__table__).where(DeliveryPointState.delivery_point_id == point.id).values(**values)
        )
        return outcome

    def switch_on(self, point_id: int, measures: str, connection: Connection) -> bool:
        """Bring a switched-off point back and close its incident; False when it was not switched off."""
        state = _locked_state(connection, point_id)
        if not state.switched_off:
            return False
        connection.execute(
            update(DeliveryPointState.__table__)
            .where(DeliveryPointState.delivery_point_id == point_id)
            .values(switched_off=False, switched_off_at=None, probe_after=None, recent_failures=[], incident_id=None)
        )
        if state.incident_id is not None:
            closed_at = datetime.now(UTC)
            connection.execute(
                update(IncidentJournalEntry)
                # An incident the administrator already closed is sealed; it is not rewritten.
                .where(IncidentJournalEntry.id == state.incident_id, IncidentJournalEntry.closed_at.is_(None))
                .values(measures_taken=measures, closed_at=closed_at, sent_at=closed_at)
            )
        return True

    def postpone_probe(self, point_id: int, connection: Connection) -> None:
        """A failed half-open probe: keep the point off and try again after the cool-down."""
        connection.execute(
            update(DeliveryPointState.__table__)
            .where(DeliveryPointState.delivery_point_id == point_id)
            .values(probe_after=datetime.now(UTC) + timedelta(seconds=self._probe_after))
        )

    def switched_off(self) -> dict[int, datetime | None]:
        """Switched-off points and when each may be probed (None: only an administrator brings it back)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(DeliveryPointState.delivery_point_id, DeliveryPointState.probe_after).where(
                    DeliveryPointState.switched_off.is_(True)
                )
            )
            return {point_id: probe_after for point_id, probe_after in rows}
