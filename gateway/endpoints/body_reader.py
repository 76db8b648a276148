"""Reading a request body from the ASGI server: within the size limit and the process's byte budget, and given up
when it stops arriving for ``GATEWAY_BODY_READ_TIMEOUT_SECONDS``.

The server hands the body over in pieces as they arrive (a chunked body's chunks already decoded). Each piece's
bytes are taken from the budget before the next is asked for; a declared length is taken whole before anything
is read. A client that declares more bytes than it sends is answered with a fault, not waited for forever.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.endpoints.admission import READ_CHUNK_BYTES, BodyTooLarge, Capacity, OverCapacity, budget_message
from gateway.endpoints.http_protocol import FRAMING_ERROR

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyIncomplete(Exception):
    """The request body stopped arriving (or the client went away) before it was complete."""


async def _next_piece(
    receive: Receive, scope: dict[str, Any], declared: str | None, idle_seconds: float
) -> tuple[bytes, bool]:
    """The next piece of the body and whether more follows."""
    try:
        async with asyncio.timeout(idle_seconds):
            message = await receive()
    except TimeoutError as exc:
        raise BodyIncomplete(
            f"the request body stopped arriving ({declared or 'no length'} bytes declared): no byte for {idle_seconds:g} s"
        ) from exc
    if message["type"] == "http.disconnect":
        raise BodyIncomplete("the client closed the connection before its request body was complete")
    if FRAMING_ERROR in scope:
        raise BodyIncomplete(scope[FRAMING_ERROR])
    return message.get("body", b""), message.get("more_body", False)


def _length(declared: str | None) -> int | None:
    return int(declared) if declared is not None and declared.isascii() and declared.isdigit() else None


async def read_body(
    receive: Receive, scope: dict[str, Any], declared: str | None, limit: int, budget: Capacity, idle_seconds: float
) -> tuple[bytes, int]:
    """Read the request body, refusing more than ``limit`` bytes whether or not a length was declared, its bytes
    taken from ``budget`` before they are read. Returns the body and the bytes taken, which the caller gives back
    once the request is over; on an exception nothing stays taken."""
    length = _length(declared)
    if length is not None and length > limit:
        raise BodyTooLarge(f"{length} bytes declared, {limit} accepted")
    taken = length if length is not None else 0
    if not budget.try_take(taken):
        raise OverCapacity(budget_message(budget))
    pieces: list[bytes] = []
    received = 0
    try:
        more = True
        while more:
            if length is None:
                if not budget.try_take(READ_CHUNK_BYTES):
                    raise OverCapacity(budget_message(budget))
                taken += READ_CHUNK_BYTES
            piece, more = await _next_piece(receive, scope, declared, idle_seconds)
            received += len(piece)
            if received > limit:
                raise BodyTooLarge(f"more than {limit} bytes sent, {limit} accepted")
            if piece:
                pieces.append(piece)
    except BaseException:
        budget.give_back(taken)
        raise
    return b"".join(pieces), taken


async def discard_body(receive: Receive, scope: dict[str, Any], declared: str | None, limit: int, idle_seconds: float) -> None:
    """Receive and drop up to ``limit`` bytes of an unread body, so that a refusal is read by the client instead
    of being lost to a reset connection; nothing is kept. A body that stops arriving is simply left."""
    received = 0
    try:
        more = True
        while more and received <= limit:
            piece, more = await _next_piece(receive, scope, declared, idle_seconds)
            received += len(piece)
    except BodyIncomplete:
        return
