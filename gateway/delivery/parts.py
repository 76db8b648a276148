"""What the delivery worker's claiming and probing pieces share."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.delivery.calling import Caller
from gateway.delivery.guard import DeliveryGuard
from gateway.delivery.outcome import Outcomes
from gateway.metrics import GatewayMetrics
from gateway.store.messages import MessageStore
from gateway.store.tasks import TaskQueue
from registry.snapshot import RegistryCache


@dataclass(frozen=True)
class WorkerParts:
    """The worker's collaborators, built once by ``DeliveryWorker``: one ``TaskQueue``, so one lease owner."""

    engine: Engine
    registry: RegistryCache
    store: MessageStore
    guard: DeliveryGuard
    tasks: TaskQueue
    caller: Caller
    outcomes: Outcomes
    metrics: GatewayMetrics
