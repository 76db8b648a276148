"""Outbound HTTP calls (SOAP to recipients and providers, REST/JSON to adapters' backends) over pooled
keep-alive connections, each bounded by the time left in its budget."""
from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import IncompleteRead, RemoteDisconnected

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from gateway.errors import ErrorCode, GatewayError

# Delivery point URLs are remembered parsed; backends' URLs with query strings vary, so the memory is bounded.
MAX_REMEMBERED_URLS = 1024
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpClient:
    """A thread-safe pool of keep-alive connections to recipients (providers, PUSH endpoints, backends)."""

    def __init__(self, pool_maxsize: int, connect_timeout: float, max_response_bytes: int) -> None:
        self._pool_maxsize = pool_maxsize
        self._targets: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._connect_timeout = connect_timeout
        self._max_response_bytes = max_response_bytes

    def post(self, url: str, body: bytes, deadline: float) -> HttpAnswer:
        """POST the SOAP envelope ``body`` to ``url`` (see :meth:`request`)."""
        return self.request("POST", url, body, SOAP_HEADERS, deadline)

    def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], deadline: float
    ) -> HttpAnswer:
        """Send one request; finish before ``deadline`` (a ``time.monotonic()`` value) or raise
        PROVIDER_TIMEOUT; a connection that cannot be made raises PROVIDER_UNREACHABLE."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, "no time left in the exchange budget")
        timeout = urllib3.Timeout(connect=min(self._connect_timeout, remaining), read=remaining, total=remaining)
        pool, path = self._targets.get(url) or self._target(url)
        try:
            response = pool.urlopen(
                method, path, body=body, headers=dict(headers), timeout=timeout, preload_content=False, redirect=False
            )
            try:
                content = response.read(self._max_response_bytes + 1)
            finally:
                response.release_conn()
        except NewConnectionError as exc:  # first: urllib3 makes it a subclass of ConnectTimeoutError
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {connection_failure(exc)}") from exc
        except ConnectTimeoutError as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: timed out connecting") from exc
        except (ReadTimeoutError, TimeoutError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, f"{url}: timed out, no answer in {remaining:.1f} s") from exc
        except MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, ReadTimeoutError):
                raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, f"{url}: timed out, no answer in {remaining:.1f} s") from exc
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {connection_failure(reason)}") from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {connection_failure(exc)}") from exc
        if len(content) > self._max_response_bytes:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"answer larger than {self._max_response_bytes} bytes")
        return HttpAnswer(status=response.status, body=content, headers=response.headers)

    def _target(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        parsed = urllib3.util.parse_url(url)
        origin = f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = urllib3.connectionpool.connection_from_url(
                    url, maxsize=self._pool_maxsize, block=False, retries=False
                )
            target = (pool, parsed.request_uri)
            if len(self._targets) < MAX_REMEMBERED_URLS:
                self._targets[url] = target
        return target

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
            self._targets.clear()


# What a failed connection is called in the journals, by the operating system's error behind it.
_CONNECTION_FAILURES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EPIPE: "connection closed while sending",
}


def connection_failure(exc: BaseException | None) -> str:
    """What went wrong with a connection, in words an operator can act on (``connection refused``, ``name not
    resolved``, ``connection closed without an answer``), else urllib3's own text without its object reprs."""
    seen = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "name not resolved"
        if isinstance(seen, OSError) and seen.errno in _CONNECTION_FAILURES:
            return _CONNECTION_FAILURES[seen.errno]
        if isinstance(seen, (RemoteDisconnected, IncompleteRead)):
            return "connection closed without a complete answer"
        seen = seen.__cause__ or seen.__context__
    if exc is None:
        return "connection failed"
    return str(exc).split(">: ", 1)[-1][:300]
