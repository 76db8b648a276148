"""Half-open probes (gateway-rules.md Q5): one delivery to each switched-off point whose cool-down has passed; a
success switches the point back on and resumes its queue, a failure postpones the next probe."""
from __future__ import annotations

from datetime import UTC, datetime

from gateway.adapters.base import AdapterAnswer
from gateway.delivery.outcome import TRANSIENT_ADAPTER_ERRORS
from gateway.delivery.parts import WorkerParts
from gateway.errors import GatewayError
from gateway.store.tasks import ClaimedTask
from journals.times import as_utc
from registry.snapshot import DeliveryPointView, RegistrySnapshot


class HalfOpenProbe:
    """Probes switched-off delivery points with one of their queued tasks."""

    def __init__(self, parts: WorkerParts) -> None:
        self._parts = parts

    def probe(self) -> None:
        """Half-open probes: one delivery to each switched-off point whose cool-down has passed."""
        clock = datetime.now(UTC)
        snapshot = self._parts.registry.current()
        for point_id, probe_after in self._parts.guard.switched_off().items():
            point = snapshot.delivery_points.get(point_id)
            if point is None or probe_after is None or as_utc(probe_after) > clock:
                continue
            for task in self._parts.tasks.claim_due_tasks(snapshot, 1, only_point=point_id):
                self._probe_with(task, point, snapshot)

    def _probe_with(self, task: ClaimedTask, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        message = self._parts.store.find(task.message_id)
        if message is None:
            return
        outcome: AdapterAnswer | GatewayError | None = None
        if point.adapter_name is not None:
            outcome = self._parts.caller.ask_adapter(task, message, point)
            transient = isinstance(outcome, GatewayError) and outcome.error in TRANSIENT_ADAPTER_ERRORS
            error = str(outcome) if transient else None
        else:
            error = self._parts.caller.send(task, message, point, snapshot)
        with self._parts.engine.begin() as connection:
            if error is not None:
                # Not an attempt of the message's: the point is off, the probe only tests it.
                self._parts.guard.postpone_probe(point.id, connection)
                self._parts.tasks.release(connection, task)
                self._parts.metrics.delivery_attempt(point.id, "failed")
                return
            self._parts.guard.switch_on(point.id, "Half-open probe delivered a message; delivery resumed", connection)
            self._parts.store.resume_point(connection, point.id, snapshot)
        if outcome is not None:
            self._parts.outcomes.settle_adapter_outcome(task, message, point, snapshot, outcome)
        else:
            self._parts.outcomes.succeeded(task, self._parts.store.find(task.message_id) or message, snapshot)
