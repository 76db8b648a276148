"""The ASGI front door: routes a request to a channel endpoint, the published contract, the health report or the
metrics; reads request bodies within the process's byte budget and the body-read deadline.

Everything here runs on the process's event loop. What would block it (the health report's and the metrics'
database and file reads) runs on the loop's executor; a channel endpoint is a coroutine.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.config import Settings
from gateway.endpoints.admission import BodyTooLarge, Capacity, OverCapacity
from gateway.endpoints.body_reader import BodyIncomplete, discard_body, read_body
from gateway.endpoints.memory import MemoryReturner
from gateway.errors import ErrorCode, GatewayError
from gateway.health import HealthCheck
from gateway.metrics import MetricsExporter
from gateway.soap.contracts import ENDPOINT_OF_SERVICE_WSDL, SERVICE_WSDL_BY_PATH, ContractDocuments

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ACCEPTED_CONTENT_TYPES = ("text/xml", "application/xml")
XML = "text/xml; charset=utf-8"
# An overloaded process asks callers to come back after this many seconds.
RETRY_AFTER_SECONDS = 1


class Endpoint(Protocol):
    """A SOAP channel endpoint."""

    async def handle(self, body: bytes) -> tuple[int, bytes]: ...

    async def reject(self, error: GatewayError) -> tuple[int, bytes]: ...


@dataclass
class GatewayApp:
    """The configured ASGI application: the one place that holds process-wide state. ``started`` and ``stopped``
    run on the serving loop (ASGI lifespan): they open and close what belongs to the loop (outbound pools)."""

    settings: Settings
    endpoints: dict[str, Endpoint]
    contracts: ContractDocuments
    health: HealthCheck
    metrics: MetricsExporter
    body_bytes: Capacity  # request-body bytes in flight in this process
    memory: MemoryReturner
    started: Callable[[], Awaitable[None]]
    stopped: Callable[[], Awaitable[None]]
    closed: Callable[[], None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"] or "/"
        method: str = scope["method"]
        endpoint_path = path if path.endswith("/") else path + "/"
        if endpoint_path in self.endpoints:
            if method == "POST":
                await self._post(self.endpoints[endpoint_path], scope, receive, send)
                return
            if method == "GET" and scope.get("query_string", b"").lower().startswith(b"wsdl"):
                body = self.contracts.document("wsdl", SERVICE_WSDL_BY_PATH[endpoint_path], self._base_url(scope), endpoint_path)
                await _respond(send, 200, XML, body or b"")
                return
            await _respond(send, 405, "text/plain", b"POST a SOAP envelope, or GET ?wsdl\n")
            return
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 2 and parts[0] in ("wsdl", "xsd"):
            endpoint = ENDPOINT_OF_SERVICE_WSDL.get(parts[1])
            body = self.contracts.document(parts[0], parts[1], self._base_url(scope), endpoint)
            if body is not None:
                await _respond(send, 200, XML, body)
                return
        if method == "GET" and path == "/health":
            status, report = await asyncio.to_thread(self.health.report)  # database and files: off the loop
            await _respond(send, status, "application/json", json.dumps(report).encode())
            return
        if method == "GET" and path == "/metrics":
            await _respond(send, 200, self.metrics.content_type, await asyncio.to_thread(self.metrics.render))
            return
        await _respond(send, 404, "text/plain", b"not found\n")

    async def _post(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
            status, body = await endpoint.reject(
                GatewayError(ErrorCode.MALFORMED_MESSAGE, f"Content-Type {content_type} is not accepted; use text/xml")
            )
            await _respond(send, status, XML, body, close=True)
            return
        declared = headers.get("content-length")
        limit, idle = self.settings.max_body_bytes, self.settings.body_read_timeout_seconds
        try:
            request_body, taken = await read_body(receive, scope, declared, limit, self.body_bytes, idle)
        except BodyTooLarge as exc:
            status, body = await endpoint.reject(GatewayError(ErrorCode.BODY_TOO_LARGE, str(exc)))
            await _respond(send, status, XML, body, close=True)
            return
        except OverCapacity as exc:
            # SCE028 with HTTP 503, journalled; the unread body is drained (not kept) so the client reads the answer.
            await discard_body(receive, scope, declared, limit, idle)
            _, body = await endpoint.reject(GatewayError(ErrorCode.GATEWAY_BUSY, str(exc)))
            await _respond(send, 503, XML, body, close=True, retry_after=RETRY_AFTER_SECONDS)
            return
        except BodyIncomplete as exc:
            status, body = await endpoint.reject(GatewayError(ErrorCode.MALFORMED_MESSAGE, str(exc)))
            await _respond(send, status, XML, body, close=True)
            return
        try:
            status, body = await endpoint.handle(request_body)
        finally:
            try:
                self.memory.handled(taken)
            finally:
                self.body_bytes.give_back(taken)
        await _respond(send, status, XML, body)

    def _base_url(self, scope: Scope) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = _headers(scope).get("host")
        if not host:
            server_host, server_port = scope.get("server") or ("127.0.0.1", self.settings.port)
            host = f"{server_host}:{server_port}"
        return f"{scope.get('scheme', 'http')}://{host}"

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stopped()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Let the journal writer commit what it holds and release what is not the loop's (the engine is the
        caller's)."""
        self.closed()


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _respond(
    send: Send, status: int, content_type: str, body: bytes, close: bool = False, retry_after: int | None = None
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except OSError:  # the client went away while its exchange ran: its journal rows are written all the same
        return
