"""The delivery-task queue: claiming due tasks under a lease and releasing them, every query in one place.

A claim takes at most the number of tasks asked for, whatever plan the database chooses. On PostgreSQL the due
tasks are first locked by one ``SELECT … LIMIT n FOR UPDATE SKIP LOCKED`` and then leased by id: written as one
``UPDATE … WHERE id IN (SELECT … LIMIT n …)``, the planner may run the subquery once per row of the outer scan
when its statistics say few tasks are pending (taken while the queue was idle), and a single claim then leased
every pending task. SQLite runs a claim as one statement, whose uncorrelated subquery it evaluates once; its
write lock keeps claims exclusive.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, literal, or_, select, update

from gateway.store.messages import PENDING
from gateway.store.models import DeliveryTask
from registry.snapshot import RegistrySnapshot

DEFAULT_CALL_TIMEOUT = 40.0  # the registry example's asyncCallTimeout, for points that set none

_CLAIMED_COLUMNS = (
    DeliveryTask.id,
    DeliveryTask.kind,
    DeliveryTask.message_id,
    DeliveryTask.delivery_point_id,
    DeliveryTask.notified_state,
    DeliveryTask.attempts,
    DeliveryTask.reference,
)


@dataclass(frozen=True)
class ClaimedTask:
    """A task leased to this worker until its lease runs out."""

    id: int
    kind: str
    message_id: str
    delivery_point_id: int
    notified_state: str | None
    attempts: int
    reference: dict[str, Any] | None = None


class TaskQueue:
    """Claims due delivery tasks for one worker (its lease owner) and writes their outcomes."""

    def __init__(self, engine: Engine, lease_margin_seconds: float) -> None:
        self._engine = engine
        self._margin = lease_margin_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def claim_due_tasks(
        self, snapshot: RegistrySnapshot, limit: int, excluded_points: set[int] | None = None, only_point: int | None = None
    ) -> list[ClaimedTask]:
        """Lease at most ``limit`` due tasks: of points not excluded, or only of ``only_point`` (a probe)."""
        if limit <= 0:
            return []
        clock = datetime.now(UTC)
        claimable = (
            (DeliveryTask.state == PENDING)
            & (DeliveryTask.next_attempt_at <= clock)
            & or_(DeliveryTask.lease_until.is_(None), DeliveryTask.lease_until < clock)
        )
        if only_point is not None:
            claimable &= DeliveryTask.delivery_point_id == only_point
        elif excluded_points:
            claimable &= DeliveryTask.delivery_point_id.not_in(excluded_points)
        due = select(DeliveryTask.id).where(claimable).order_by(DeliveryTask.next_attempt_at, DeliveryTask.id).limit(limit)
        with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                ids = list(connection.scalars(due.with_for_update(skip_locked=True)))
                if not ids:
                    return []
                chosen: Any = DeliveryTask.id.in_(ids)
            else:
                chosen = DeliveryTask.id.in_(due.scalar_subquery())
            claim = (
                update(DeliveryTask)
                .where(chosen, claimable)  # claimable again: a task leased meanwhile is not taken twice
                .values(lease_owner=self.owner, lease_until=self._lease_until(snapshot, clock))
                .returning(*_CLAIMED_COLUMNS)
            )
            return [ClaimedTask(*row) for row in connection.execute(claim)]

    def release(self, connection: Connection, task: ClaimedTask, **values: object) -> bool:
        """Write the task and release its lease; False when the lease had expired and another worker holds it."""
        return bool(
            connection.execute(
                update(DeliveryTask)
                .where(DeliveryTask.id == task.id, DeliveryTask.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None, **values)
            ).rowcount
        )

    def give_back(self, tasks: list[ClaimedTask]) -> None:
        """Release ``tasks`` unchanged, due as they were, in one transaction (claimed, but not to be tried now)."""
        with self._engine.begin() as connection:
            connection.execute(
                update(DeliveryTask)
                .where(DeliveryTask.id.in_([task.id for task in tasks]), DeliveryTask.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )

    def release_later(self, task: ClaimedTask, seconds: float, **values: object) -> None:
        """Release the task, due again in ``seconds``, in a transaction of its own."""
        with self._engine.begin() as connection:
            self.release(connection, task, next_attempt_at=datetime.now(UTC) + timedelta(seconds=seconds), **values)

    def _lease_until(self, snapshot: RegistrySnapshot, clock: datetime) -> ColumnElement[datetime]:
        """Each task's lease: its delivery point's call timeout plus the margin, from ``clock``."""
        by_point = {
            point.id: clock + timedelta(seconds=(point.async_call_timeout_sec or DEFAULT_CALL_TIMEOUT) + self._margin)
            for point in snapshot.delivery_points.values()
        }
        default = clock + timedelta(seconds=DEFAULT_CALL_TIMEOUT + self._margin)
        return case(by_point, value=DeliveryTask.delivery_point_id, else_=default) if by_point else literal(default)
