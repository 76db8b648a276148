"""Admission to the channels: the request-body bytes one gateway process holds at once, refused beyond them.

A parsed envelope of small elements costs about eleven times its bytes in lxml nodes (a 9 MB body, ~100 MB), so
it is the bodies held at once, not their number, that decide a worker's peak memory. Each request's bytes are
taken from the process's budget (``GATEWAY_MAX_BYTES_IN_FLIGHT``) without waiting and before they are read: a
declared length whole, a chunked body piece by piece as it arrives. A request over the budget gets ``SCE028``
with HTTP 503 and ``Connection: close`` at once (``gateway/endpoints/asgi.py``; the reading is
``gateway/endpoints/body_reader.py``). Provider calls in flight are bounded elsewhere (``gateway/delivery/bulkhead.py``).
"""
from __future__ import annotations

import threading

READ_CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The request body is larger than the configured limit."""


class OverCapacity(Exception):
    """Taking this request on would exceed one of the process's ceilings; the message says which."""


class Capacity:
    """An amount with a ceiling, taken and given back without ever waiting."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._in_use = 0

    def try_take(self, amount: int) -> bool:
        """Take ``amount`` if it fits under the ceiling."""
        with self._lock:
            if self._in_use + amount > self.limit:
                return False
            self._in_use += amount
            return True

    def give_back(self, amount: int) -> int:
        """Return ``amount`` taken earlier; the amount still in use."""
        with self._lock:
            self._in_use -= amount
            return self._in_use

    @property
    def in_use(self) -> int:
        """What is taken now."""
        return self._in_use


def budget_message(budget: Capacity) -> str:
    """Why a request was refused for the byte budget, in the words an operator reads in the journal."""
    return (f"{budget.in_use} bytes of requests are being processed, {budget.limit} accepted at once "
            "(GATEWAY_MAX_BYTES_IN_FLIGHT)")
