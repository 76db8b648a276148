"""Admission to the channels: the request-body bytes one gateway process holds at once, refused beyond them.

A parsed envelope of small elements costs about eleven times its bytes in lxml nodes (a 9 MB body, ~100 MB), so
it is the bodies held at once, not their number, that decide a worker's peak memory. Each request's bytes are
taken from the process's budget (``GATEWAY_MAX_BYTES_IN_FLIGHT``) without waiting and before they are read: a
declared length whole, a chunked body piece by piece as it arrives. A request over the budget gets ``SCE028``
with HTTP 503 and ``Connection: close`` at once (``gateway/endpoints/wsgi.py``). Threads are bounded elsewhere
(``gateway/delivery/bulkhead.py``): only calls to providers hold a thread for long.
"""
from __future__ import annotations

import threading
from typing import Any

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


def declared_length(environ: dict[str, Any]) -> int | None:
    """The request's Content-Length, or None when it declared none (chunked)."""
    header = environ.get("CONTENT_LENGTH") or ""
    return int(header) if header.isascii() and header.isdigit() else None


def read_body(environ: dict[str, Any], limit: int, budget: Capacity) -> tuple[bytes, int]:
    """Read the request body, refusing more than ``limit`` bytes whether or not a length was declared, its
    bytes taken from ``budget`` before they are read. Returns the body and the bytes taken, which the caller
    gives back once the request is over; on an exception nothing stays taken."""
    stream = environ["wsgi.input"]
    length = declared_length(environ)
    if length is not None:
        if length > limit:
            raise BodyTooLarge(f"{length} bytes declared, {limit} accepted")
        if not budget.try_take(length):
            raise OverCapacity(_budget_message(budget))
        try:
            return (stream.read(length) if length else b""), length
        except BaseException:
            budget.give_back(length)
            raise
    pieces: list[bytes] = []
    taken = received = 0
    try:
        while True:
            if not budget.try_take(READ_CHUNK_BYTES):
                raise OverCapacity(_budget_message(budget))
            taken += READ_CHUNK_BYTES
            piece = stream.read(READ_CHUNK_BYTES)
            if not piece:
                break
            pieces.append(piece)
            received += len(piece)
            if received > limit:
                raise BodyTooLarge(f"more than {limit} bytes sent, {limit} accepted")
    except BaseException:
        budget.give_back(taken)
        raise
    return b"".join(pieces), taken


def discard_body(environ: dict[str, Any], limit: int) -> None:
    """Read and drop up to ``limit`` bytes of an unread body, so that a refusal is read by the client instead
    of being lost to a reset connection; nothing is kept."""
    stream = environ["wsgi.input"]
    length = declared_length(environ)
    left = min(length, limit) if length is not None else limit
    while left > 0:
        piece = stream.read(min(READ_CHUNK_BYTES, left))
        if not piece:
            return
        left -= len(piece)


def _budget_message(budget: Capacity) -> str:
    return (f"{budget.in_use} bytes of requests are being processed, {budget.limit} accepted at once "
            "(GATEWAY_MAX_BYTES_IN_FLIGHT)")
