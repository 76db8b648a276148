"""Half-open probes (gateway-rules.md Q5): one delivery to each switched-off point whose cool-down has passed; a
success switches the point back on and resumes its queue, a failure postpones the next probe."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.adapters.base import AdapterAnswer
from gateway.delivery.outcome import TRANSIENT_ADAPTER_ERRORS
from gateway.delivery.parts import WorkerParts
from gateway.errors import GatewayError
from gateway.store.messages import StoredMessage
from gateway.store.tasks import ClaimedTask
from journals.times import as_utc
from registry.snapshot import DeliveryPointView, RegistrySnapshot


class HalfOpenProbe:
    """Probes switched-off delivery points with one of their queued tasks."""

    def __init__(self, parts: WorkerParts) -> None:
        self._parts = parts

    async def probe(self) -> None:
        """Half-open probes: one delivery to each switched-off point whose cool-down has passed."""
        # At once, not one after another: each was leased at the same moment, for its own call's time.
        probes = await asyncio.to_thread(self._claim_probes)
        await asyncio.gather(*(self._probe_with(*probe) for probe in probes))

    def _claim_probes(self) -> list[tuple[ClaimedTask, StoredMessage, DeliveryPointView, RegistrySnapshot]]:
        """A task of each switched-off point due for its probe, leased, with its message (in a thread)."""
        clock = datetime.now(UTC)
        snapshot = self._parts.registry.current()
        probes = []
        for point_id, probe_after in self._parts.guard.switched_off().items():
            point = snapshot.delivery_points.get(point_id)
            if point is None or probe_after is None or as_utc(probe_after) > clock:
                continue
            for task in self._parts.tasks.claim_due_tasks(snapshot, 1, only_point=point_id):
                message = self._parts.store.find(task.message_id)
                if message is not None:
                    probes.append((task, message, point, snapshot))
        return probes

    async def _probe_with(self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot) -> None:
        outcome: AdapterAnswer | GatewayError | None = None
        if point.adapter_name is not None:
            outcome = await self._parts.caller.ask_adapter(task, message, point)
            transient = isinstance(outcome, GatewayError) and outcome.error in TRANSIENT_ADAPTER_ERRORS
            error = str(outcome) if transient else None
        else:
            error = await self._parts.caller.send(task, message, point, snapshot)
        await asyncio.to_thread(self._settle, task, message, point, snapshot, outcome, error)

    def _settle(
        self, task: ClaimedTask, message: StoredMessage, point: DeliveryPointView, snapshot: RegistrySnapshot,
        outcome: AdapterAnswer | GatewayError | None, error: str | None,
    ) -> None:
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
