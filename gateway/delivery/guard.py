"""Per-delivery-point throttle and breaker, kept in the database so every worker process agrees.

Throttle (gateway-rules.md Q1): at most ``throttlingRequestCount`` calls in any window of ``throttlingTimeout``
seconds, as an exact sliding window over the start times of the recent calls, widened by 10 % so that the
recipient, which sees the calls arrive with some jitter, never counts more either. A call over the limit is not
made and not counted as a failure: the caller is told how long to wait.

Breaker (Q4, Q5): failed calls are counted in a sliding window of ``maxErrorInterval`` seconds; at ``maxErrors``
the delivery point is switched off, its messages stay queued, and an incident is opened. It comes back by an
administrator (:meth:`DeliveryGuard.switch_on`) or, when configured, after a successful half-open probe.

Each decision locks the point's state row first (``gateway/store/points.py``), so concurrent workers see each
other's calls and failures; the incident is opened and closed through ``journals/incidents.py``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from gateway.store.points import DeliveryPointStates
from journals.incidents import close_breaker_incident, open_breaker_incident
from registry.snapshot import DeliveryPointView


THROTTLE_WINDOW_SAFETY = 1.1


@dataclass(frozen=True)
class FailureOutcome:
    """What recording a failure did: whether it switched the point off, and the incident it opened."""

    switched_off: bool
    incident_id: int | None = None


class DeliveryGuard:
    """Throttle and breaker decisions for delivery points."""

    def __init__(self, engine: Engine, probe_after_seconds: float) -> None:
        self._states = DeliveryPointStates(engine)
        self._probe_after = probe_after_seconds

    @staticmethod
    def throttles(point: DeliveryPointView) -> bool:
        """Whether calls to ``point`` take a slot under a throttle (a database decision) before they go."""
        return bool(point.throttling_enabled and point.throttling_request_count and point.throttling_timeout_sec)

    def take_call_slot(self, point: DeliveryPointView) -> float:
        """Take a call slot under the point's throttle: 0 when the call may go now, else seconds to wait."""
        if not self.throttles(point):
            return 0.0
        window, limit = float(point.throttling_timeout_sec) * THROTTLE_WINDOW_SAFETY, point.throttling_request_count
        with self._states.begin() as connection:
            state = self._states.locked(connection, point.id)
            clock = time.time()
            calls = [t for t in state.recent_calls if t > clock - window]
            if len(calls) >= limit:
                return calls[-limit] + window - clock
            calls.append(clock)
            self._states.record_calls(connection, point.id, calls[-limit:])
        return 0.0

    def record_failure(self, point: DeliveryPointView, reason: str, connection: Connection) -> FailureOutcome:
        """Count a failed call within the caller's transaction; switch the point off at ``maxErrors``."""
        if not (point.max_errors and point.max_error_interval_sec):
            return FailureOutcome(False)
        state = self._states.locked(connection, point.id)
        clock = time.time()
        failures = [t for t in state.recent_failures if t > clock - point.max_error_interval_sec] + [clock]
        recent = failures[-point.max_errors :]
        if not (len(failures) >= point.max_errors and not state.switched_off):
            self._states.record_failures(connection, point.id, recent)
            return FailureOutcome(False)
        switched_at = datetime.now(UTC)
        incident_id = open_breaker_incident(
            connection, point.id, switched_at,
            f"{len(failures)} failed deliveries within {point.max_error_interval_sec} s; last: {reason}",
        )
        self._states.record_failures(
            connection, point.id, recent,
            switched_off_at=switched_at,
            probe_after=switched_at + timedelta(seconds=self._probe_after) if self._probe_after > 0 else None,
            incident_id=incident_id,
        )
        return FailureOutcome(True, incident_id)

    def switch_on(self, point_id: int, measures: str, connection: Connection) -> bool:
        """Bring a switched-off point back and close its incident; False when it was not switched off."""
        state = self._states.locked(connection, point_id)
        if not state.switched_off:
            return False
        self._states.switch_on(connection, point_id)
        if state.incident_id is not None:
            close_breaker_incident(connection, state.incident_id, measures)
        return True

    def postpone_probe(self, point_id: int, connection: Connection) -> None:
        """A failed half-open probe: keep the point off and try again after the cool-down."""
        self._states.postpone_probe(connection, point_id, datetime.now(UTC) + timedelta(seconds=self._probe_after))

    def switched_off(self) -> dict[int, datetime | None]:
        """Switched-off points and when each may be probed (None: only an administrator brings it back)."""
        return self._states.switched_off()
