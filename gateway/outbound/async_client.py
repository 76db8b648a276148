"""Outbound HTTP on the event loop (aiohttp), for SOAP providers, PUSH recipients and the adapters' back offices
alike: a pool of keep-alive connections per origin, each call bounded by the time left in its exchange budget,
failures named as the catalogue names them. No call holds a thread while it waits.

A session (and its connector, i.e. its pool) is made per origin and trust the first time it is called, on the loop
that calls it: one provider's full pool or dead host never takes another provider's connections. An HTTPS
provider is verified against the trust its delivery point names in the registry (``tlsTrustedCertificates``), or
else the gateway's provider trust; verification cannot be switched off. A POST is never
retried here (aiohttp retries nothing but a reused connection found closed before anything was sent): whether a
provider ran a request twice is for the journal to prevent, not for a transport to guess.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from yarl import URL

from gateway.errors import ErrorCode, GatewayError

# Delivery point URLs are remembered parsed; backends' URLs with query strings vary, so the memory is bounded.
MAX_REMEMBERED_URLS = 1024
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
_READ_CHUNK = 64 * 1024
# aiohttp's own additions (User-Agent, Accept-Encoding) go; a provider sees the headers the gateway chose.
_SKIPPED_AUTO_HEADERS = ("User-Agent", "Accept-Encoding")


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP answer as the gateway reads it: status, the whole body (within the size limit), headers."""
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpRequests(Protocol):
    """What an adapter calls its back office through: one request, finished before ``deadline``."""

    async def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], deadline: float
    ) -> HttpAnswer: ...


class AsyncHttpClient:
    """Pooled keep-alive connections per origin and trust, used from one event loop; ``tls`` verifies HTTPS
    providers whose delivery point names no trust of its own (the system's trust store by default)."""

    def __init__(self, connect_timeout: float, max_response_bytes: int, tls: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._max_response_bytes = max_response_bytes
        self._tls = tls if tls is not None else ssl.create_default_context()
        self._sessions: dict[tuple[str, str], aiohttp.ClientSession] = {}  # by origin and trust
        self._targets: dict[tuple[str, str], tuple[aiohttp.ClientSession, URL]] = {}  # by URL and trust, parsed once
        self._trusts: dict[str, ssl.SSLContext] = {}  # a delivery point's own trust, by its PEM bundle

    async def post(self, url: str, body: bytes, deadline: float, trust: str = "") -> HttpAnswer:
        """POST the SOAP envelope ``body`` to ``url`` (see :meth:`request`)."""
        return await self.request("POST", url, body, SOAP_HEADERS, deadline, trust)

    async def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], deadline: float, trust: str = ""
    ) -> HttpAnswer:
        """Send one request; finish before ``deadline`` (a ``time.monotonic()`` value) or raise PROVIDER_TIMEOUT;
        an HTTPS server is verified against ``trust`` (PEM CA certificates) when given, else the client's ``tls``;
        a connection that cannot be made (or breaks before the whole answer came) raises PROVIDER_UNREACHABLE; an
        answer over the size limit raises PROVIDER_RESPONSE_INVALID."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, "no time left in the exchange budget")
        session, target = self._targets.get((url, trust)) or self._target(url, trust)
        timeout = aiohttp.ClientTimeout(total=remaining, sock_connect=min(self._connect_timeout, remaining))
        try:
            async with session.request(
                method, target, data=body, headers=headers, timeout=timeout, allow_redirects=False,
                auto_decompress=False, skip_auto_headers=_SKIPPED_AUTO_HEADERS,
            ) as response:
                content = await self._read(response)
                return HttpAnswer(status=response.status, body=content, headers=dict(response.headers))
        except aiohttp.ConnectionTimeoutError as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: timed out connecting") from exc
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, f"{url}: timed out, no answer in {remaining:.1f} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {connection_failure(exc.os_error)}") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, asyncio.IncompleteReadError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: connection closed without a complete answer") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {connection_failure(exc)}") from exc

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self._max_response_bytes:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"answer larger than {self._max_response_bytes} bytes")
        if declared is not None:
            return await response.content.readexactly(declared) if declared else b""
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"answer larger than {self._max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def trusting(self, trust: str) -> PointRequests:
        """This client's requests with HTTPS verified against ``trust`` (a delivery point's PEM CAs; empty: the
        client's own trust), for an adapter that calls its back office on that point's behalf."""
        return PointRequests(self, trust)

    def _target(self, url: str, trust: str) -> tuple[aiohttp.ClientSession, URL]:
        target = URL(url, encoded=True)
        key = (target.origin().human_repr(), trust)
        session = self._sessions.get(key) or self._session(key, target.scheme)
        if len(self._targets) < MAX_REMEMBERED_URLS:
            self._targets[(url, trust)] = (session, target)
        return session, target

    def _session(self, key: tuple[str, str], scheme: str) -> aiohttp.ClientSession:
        # No connection cap of its own: the bulkhead (maxConcurrentCalls per point) is the one limit, and a second,
        # hidden queue here would spend callers' budgets waiting for a connection.
        tls = (self._trust(key[1]) if key[1] else self._tls) if scheme == "https" else False
        connector = aiohttp.TCPConnector(limit=0, ssl=tls, keepalive_timeout=30)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False)
        self._sessions[key] = session
        return session

    def _trust(self, bundle: str) -> ssl.SSLContext:
        if bundle not in self._trusts:
            self._trusts[bundle] = ssl.create_default_context(cadata=bundle)
        return self._trusts[bundle]

    async def close(self) -> None:
        """Close every pool (on the loop that used them)."""
        sessions, self._sessions, self._targets = list(self._sessions.values()), {}, {}
        for session in sessions:
            await session.close()


@dataclass(frozen=True)
class PointRequests:
    """An :class:`AsyncHttpClient` whose requests are verified against one delivery point's trust."""

    client: AsyncHttpClient
    trust: str

    async def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], deadline: float
    ) -> HttpAnswer:
        """:meth:`AsyncHttpClient.request` under the point's trust."""
        return await self.client.request(method, url, body, headers, deadline, self.trust)


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
    resolved``), else the error's own text without object reprs."""
    seen = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "name not resolved"
        if isinstance(seen, OSError) and seen.errno in _CONNECTION_FAILURES:
            return _CONNECTION_FAILURES[seen.errno]
        seen = seen.__cause__ or seen.__context__
    if exc is None:
        return "connection failed"
    return str(exc).split(">: ", 1)[-1][:300]
