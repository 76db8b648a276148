"""Bulkheads: at most ``maxConcurrentCalls`` calls in flight to one delivery point from this process, and at
most ``GATEWAY_MAX_PROVIDER_CALLS`` provider calls in flight in all.

A provider call awaited on the event loop holds no thread, but it holds a connection, a parsed request and a
caller; without a cap, one slow provider's callers would pile up without bound. A call over its point's cap is
refused at once (``SCE027``), one over the process's cap too (``SCE028``), instead of waiting for a slot: the
caller learns in milliseconds. The counts are per process: with N gateway workers a point sees at most
N x ``maxConcurrentCalls`` calls. The counters are taken and given back on the loop's thread and by the delivery
worker's threads alike, hence the lock (held for a few instructions, never across a wait).
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.errors import ErrorCode, GatewayError
from registry.snapshot import DeliveryPointView


class Bulkhead:
    """Calls in flight per delivery point and in all, each taken without waiting; a point's limit is given at
    the call (the registry may change it), the total at construction."""

    def __init__(self, total_limit: int) -> None:
        self.total_limit = total_limit
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self._total = 0

    def try_acquire(self, point_id: int, limit: int) -> bool:
        """Take a slot of ``point_id`` if fewer than ``limit`` are taken there and the total is not reached."""
        return self._take(point_id, limit) is None

    def release(self, point_id: int) -> None:
        """Give back a slot taken by :meth:`try_acquire` or :meth:`admit`."""
        with self._lock:
            self._total -= 1
            taken = self._in_flight.get(point_id, 0) - 1
            if taken > 0:
                self._in_flight[point_id] = taken
            else:
                self._in_flight.pop(point_id, None)

    def in_flight(self, point_id: int) -> int:
        """Slots of ``point_id`` taken now."""
        with self._lock:
            return self._in_flight.get(point_id, 0)

    def admit(self, point: DeliveryPointView) -> Callable[[], None]:
        """Take a slot of ``point`` and return what gives it back; raise ``SCE027`` at once when the point is
        full, ``SCE028`` when the process is."""
        refusal = self._take(point.id, point.max_concurrent_calls)
        if refusal is not None:
            raise refusal
        return lambda: self.release(point.id)

    def _take(self, point_id: int, limit: int) -> GatewayError | None:
        with self._lock:
            taken = self._in_flight.get(point_id, 0)
            if taken >= limit:
                return GatewayError(ErrorCode.PROVIDER_BUSY, (
                    f"delivery point {point_id} already has {limit} calls in progress "
                    "(maxConcurrentCalls, per gateway process); try again later"))
            if self._total >= self.total_limit:
                return GatewayError(ErrorCode.GATEWAY_BUSY, (
                    f"this gateway process already has {self.total_limit} provider calls in progress "
                    "(GATEWAY_MAX_PROVIDER_CALLS); try again later"))
            self._in_flight[point_id] = taken + 1
            self._total += 1
            return None
