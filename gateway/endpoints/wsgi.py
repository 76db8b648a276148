"""The WSGI front door: routes a request to a channel endpoint, the published contract, the health report or the
metrics; reads request bodies within the process's byte budget and the body-read deadline."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from gateway.adapters.pool import AdapterPool
from gateway.config import Settings
from gateway.outbound.http_client import HttpClient
from gateway.endpoints.admission import BodyTooLarge, Capacity, OverCapacity, discard_body, read_body
from gateway.endpoints.body_deadline import BodyIncomplete, body_read_deadline
from gateway.endpoints.memory import MemoryReturner
from gateway.errors import ErrorCode, GatewayError
from gateway.health import HealthCheck
from gateway.metrics import MetricsExporter
from gateway.soap.contracts import ENDPOINT_OF_SERVICE_WSDL, SERVICE_WSDL_BY_PATH, ContractDocuments
from journals.logging_journal import LoggingJournal

StartResponse = Callable[..., Any]
ACCEPTED_CONTENT_TYPES = ("text/xml", "application/xml")
XML = "text/xml; charset=utf-8"


# An overloaded process asks callers to come back after this many seconds.
RETRY_AFTER_SECONDS = 1


class Endpoint(Protocol):
    """A SOAP channel endpoint."""

    def handle(self, body: bytes) -> tuple[int, bytes]: ...

    def reject(self, error: GatewayError) -> tuple[int, bytes]: ...


@dataclass
class GatewayApp:
    """The configured application object: the one place that holds process-wide state."""

    settings: Settings
    engine: Engine
    endpoints: dict[str, Endpoint]
    contracts: ContractDocuments
    http_client: HttpClient
    adapters: AdapterPool
    journal: LoggingJournal
    health: HealthCheck
    metrics: MetricsExporter
    body_bytes: Capacity  # request-body bytes in flight in this process
    memory: MemoryReturner

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        endpoint_path = path if path.endswith("/") else path + "/"
        if endpoint_path in self.endpoints:
            if method == "POST":
                return self._post(self.endpoints[endpoint_path], environ, start_response)
            if method == "GET" and environ.get("QUERY_STRING", "").lower().startswith("wsdl"):
                body = self.contracts.document("wsdl", SERVICE_WSDL_BY_PATH[endpoint_path], self._base_url(environ), endpoint_path)
                return _respond(start_response, 200, XML, body or b"")
            return _respond(start_response, 405, "text/plain", b"POST a SOAP envelope, or GET ?wsdl\n")
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 2 and parts[0] in ("wsdl", "xsd"):
            endpoint = ENDPOINT_OF_SERVICE_WSDL.get(parts[1])
            body = self.contracts.document(parts[0], parts[1], self._base_url(environ), endpoint)
            if body is not None:
                return _respond(start_response, 200, XML, body)
        if method == "GET" and path == "/health":
            status, report = self.health.report()
            return _respond(start_response, status, "application/json", json.dumps(report).encode())
        if method == "GET" and path == "/metrics":
            return _respond(start_response, 200, self.metrics.content_type, self.metrics.render())
        return _respond(start_response, 404, "text/plain", b"not found\n")

    def _post(self, endpoint: Endpoint, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        content_type = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
        if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
            status, body = endpoint.reject(
                GatewayError(ErrorCode.MALFORMED_MESSAGE, f"Content-Type {content_type} is not accepted; use text/xml")
            )
            return _respond(start_response, status, XML, body)
        try:
            with body_read_deadline(environ, self.settings.body_read_timeout_seconds):
                request_body, taken = read_body(environ, self.settings.max_body_bytes, self.body_bytes)
        except BodyTooLarge as exc:
            status, body = endpoint.reject(GatewayError(ErrorCode.BODY_TOO_LARGE, str(exc)))
            return _respond(start_response, status, XML, body, close=True)
        except OverCapacity as exc:
            return self._over_capacity(endpoint, environ, start_response, str(exc))
        except BodyIncomplete as exc:
            status, body = endpoint.reject(GatewayError(ErrorCode.MALFORMED_MESSAGE, str(exc)))
            return _respond(start_response, status, XML, body, close=True)
        except Exception as exc:  # the server's own framing errors (a broken chunk), a reset: the body is unreadable
            reason = f"the request body could not be read ({type(exc).__name__})"
            status, body = endpoint.reject(GatewayError(ErrorCode.MALFORMED_MESSAGE, reason))
            return _respond(start_response, status, XML, body, close=True)
        try:
            status, body = endpoint.handle(request_body)
        finally:
            try:
                self.memory.handled(taken)
            finally:
                self.body_bytes.give_back(taken)
        return _respond(start_response, status, XML, body)

    def _over_capacity(
        self, endpoint: Endpoint, environ: dict[str, Any], start_response: StartResponse, reason: str
    ) -> Iterable[bytes]:
        """SCE028 with HTTP 503, journalled; the unread body is drained (not kept) so the client reads the answer."""
        with contextlib.suppress(BodyIncomplete), body_read_deadline(environ, self.settings.body_read_timeout_seconds):
            discard_body(environ, self.settings.max_body_bytes)
        _, body = endpoint.reject(GatewayError(ErrorCode.GATEWAY_BUSY, reason))
        return _respond(start_response, 503, XML, body, close=True, retry_after=RETRY_AFTER_SECONDS)

    def _base_url(self, environ: dict[str, Any]) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    def close(self) -> None:
        """Let the journal writer commit what it holds and release the HTTP pool (the engine is the caller's)."""
        self.journal.close()
        self.adapters.close()
        self.http_client.close()
        self.memory.close()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


def _respond(
    start_response: StartResponse, status: int, content_type: str, body: bytes, close: bool = False,
    retry_after: int | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
        # gunicorn drops an application's hop-by-hop headers; its response object closes on request.
        force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
        if force_close is not None:
            force_close()
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    start_response(f"{status} {_REASONS.get(status, '')}", headers)
    return [body]
