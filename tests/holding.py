"""A slow peer for tests of the event loop: an ASGI server that holds each call a while before answering, so that
it never queues what it is sent, and counts the calls it holds at once."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

Answer = tuple[int, bytes, bytes]  # status, content type, body


class HoldingServer:
    """Reads each request whole, holds it ``seconds`` (counting calls in flight and their peak), then sends what
    :meth:`answer` makes of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.in_flight = 0
        self.peak = 0

    async def answer(self, scope: dict[str, Any], body: bytes) -> Answer:
        """The answer to one held request."""
        raise NotImplementedError

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.in_flight -= 1
        status, content_type, content = await self.answer(scope, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})


class RelayingServer(HoldingServer):
    """A back office holding each call ``seconds``: the first call is passed on to ``backend_url`` and its answer
    relayed, later ones get that same answer (for a question whose answer does not change, such as a balance), so
    that the emulator behind never queues the calls held here."""

    def __init__(self, backend_url: str, seconds: float) -> None:
        super().__init__(seconds)
        self.backend_url = backend_url
        self._answer: Answer | None = None

    async def answer(self, scope: dict[str, Any], body: bytes) -> Answer:
        if self._answer is None:
            headers = {name.decode(): value.decode() for name, value in scope["headers"]
                       if name.lower() not in (b"host", b"content-length", b"transfer-encoding")}
            async with aiohttp.ClientSession() as session, session.request(
                scope["method"], self.backend_url + scope["path"], data=body, headers=headers
            ) as answer:
                content_type = answer.headers.get("Content-Type", "application/json").encode()
                self._answer = answer.status, content_type, await answer.read()
        return self._answer
