"""Claims take what they asked for: at most the limit, whatever plan the database chooses, and never a task that
another worker holds."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update

from gateway.store.models import AsyncMessage, DeliveryTask
from gateway.store.tasks import TaskQueue

NO_POINTS = SimpleNamespace(delivery_points={})  # every task gets the default lease
IDLE_POINT, BURST_POINT = 9000, 9001  # points no registry names


def add_tasks(engine: Engine, count: int, state: str, point_id: int) -> None:
    """``count`` messages queued for ``point_id``, each with one MESSAGE task in ``state``."""
    clock = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    messages = [
        dict(message_id=i, correlation_id=i, service_id="S", message_type="REQUEST", message_date="2026-01-01T00:00:00Z",
             sender_id="pep", recipient_id="prov", properties=[], data="<data/>", delivery_mode="PUSH",
             state="ON_DELIVERY", fetched=False, session_id="{s}", accepted_at=clock, state_changed_at=clock)
        for i in ids
    ]
    tasks = [dict(kind="MESSAGE", message_id=i, delivery_point_id=point_id, state=state, attempts=0,
                  next_attempt_at=clock, created_at=clock) for i in ids]
    with engine.begin() as connection:
        connection.execute(insert(AsyncMessage), messages)
        connection.execute(insert(DeliveryTask), tasks)


def set_statistics(engine: Engine, frozen: bool) -> None:
    """Take the task table's statistics as they are now and keep them (no automatic refresh) until called again
    with ``frozen`` false, which hands them back to the database."""
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgresql:
            autovacuum = "SET (autovacuum_enabled = false)" if frozen else "RESET (autovacuum_enabled)"
            connection.execute(text(f"ALTER TABLE delivery_task {autovacuum}"))
        connection.execute(text("ANALYZE delivery_task" if postgresql or frozen else "DROP TABLE IF EXISTS sqlite_stat1"))


@pytest.fixture()
def idle_statistics(engine: Engine) -> Iterator[None]:
    """The task table as a healthy queue looks to the planner: statistics taken while its tasks were all DONE, kept
    until the test ends (no automatic refresh). A burst of pending tasks added after is unknown to them."""
    add_tasks(engine, 2000, "DONE", point_id=IDLE_POINT)
    set_statistics(engine, frozen=True)
    yield
    set_statistics(engine, frozen=False)
    remove_tasks(engine, IDLE_POINT)


@pytest.fixture()
def queues(engine: Engine, idle_statistics: None) -> Iterator[list[TaskQueue]]:
    """Four workers' queues over 2,000 pending tasks the statistics do not know about; their leases are released
    after the test."""
    add_tasks(engine, 2000, "PENDING", point_id=BURST_POINT)
    made = [TaskQueue(engine, lease_margin_seconds=30) for _ in range(4)]
    yield made
    with engine.begin() as connection:
        connection.execute(update(DeliveryTask).where(DeliveryTask.lease_owner.in_([q.owner for q in made]))
                           .values(lease_owner=None, lease_until=None))
    remove_tasks(engine, BURST_POINT)


def remove_tasks(engine: Engine, point_id: int) -> None:
    """Delete the tasks of ``point_id`` and their messages."""
    with engine.begin() as connection:
        doomed = list(connection.scalars(select(DeliveryTask.message_id).where(DeliveryTask.delivery_point_id == point_id)))
        connection.execute(delete(DeliveryTask).where(DeliveryTask.delivery_point_id == point_id))
        for start in range(0, len(doomed), 500):
            connection.execute(delete(AsyncMessage).where(AsyncMessage.message_id.in_(doomed[start:start + 500])))


def test_a_claim_takes_at_most_its_limit_with_statistics_of_an_idle_queue(engine: Engine, queues: list[TaskQueue]) -> None:
    claimed = queues[0].claim_due_tasks(NO_POINTS, 8)
    assert len(claimed) == 8
    with engine.connect() as connection:
        leased = connection.scalar(select(func.count()).where(DeliveryTask.lease_owner == queues[0].owner))
    assert leased == 8


def test_concurrent_claims_never_share_a_task(queues: list[TaskQueue]) -> None:
    def claim_all(queue: TaskQueue) -> list[int]:
        taken: list[int] = []
        for _ in range(40):  # 4 queues x 40 claims x 8 = 1,280 of the 2,000 pending tasks at most
            taken += [task.id for task in queue.claim_due_tasks(NO_POINTS, 8)]
        return taken

    with ThreadPoolExecutor(max_workers=4) as pool:
        claims = list(pool.map(claim_all, queues))
    every = [task_id for claim in claims for task_id in claim]
    assert len(every) == len(set(every))
    assert all(len(claim) <= 40 * 8 for claim in claims)


def test_a_claim_skips_excluded_points_and_probes_only_its_point(queues: list[TaskQueue]) -> None:
    assert all(task.delivery_point_id != BURST_POINT for task in queues[0].claim_due_tasks(NO_POINTS, 8, excluded_points={BURST_POINT}))
    probe = queues[1].claim_due_tasks(NO_POINTS, 1, only_point=BURST_POINT)
    assert len(probe) == 1 and probe[0].delivery_point_id == BURST_POINT
