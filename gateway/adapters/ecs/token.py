"""OAuth 2.0 client-credentials tokens (spec §7.3, §10.3): cached, renewed before expiry, one renewal at a time.

Callers that need a token while a renewal is in flight wait for that renewal instead of starting their own, so
N concurrent calls with an expired token cost one token request. A token the backend rejects is invalidated
only if it is still the current one, so N concurrent 401s also cost one renewal.

A :class:`TokenSource` belongs to one event loop (the one its adapter's ``handle`` runs on): it takes no locks,
because between two awaits nothing else on that loop runs, and it is not safe to use from other threads or loops.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from pydantic import SecretStr

from gateway.adapters.ecs.wire import TokenAnswer, loads, read_answer
from gateway.outbound.async_client import HttpRequests
from gateway.errors import ErrorCode, ErrorInfo, GatewayError

FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


@dataclass(frozen=True)
class Token:
    value: str
    renew_at: float  # time.monotonic() after which the token is renewed before use


@dataclass(frozen=True)
class TokenEndpoint:
    """Where and as whom tokens are asked for."""

    url: str
    client_id: str
    client_secret: SecretStr
    scopes: str
    renew_margin_seconds: float


class TokenSource:
    """The current access token of one (token URL, client, scopes), for coroutines of one event loop."""

    def __init__(self, endpoint: TokenEndpoint, http: HttpRequests) -> None:
        self._endpoint = endpoint
        self._http = http
        self._token: Token | None = None
        self._renewal: asyncio.Task[Token] | None = None  # the renewal in flight, if any

    async def get(self, deadline: float) -> str:
        """A valid token, renewing it (or waiting for the renewal in flight) before ``deadline``; a failed renewal
        is raised to every caller that waited for it."""
        token = self._token
        if token is not None and time.monotonic() < token.renew_at:
            return token.value
        renewal = self._renewal
        if renewal is None:
            renewal = self._renewal = asyncio.get_running_loop().create_task(self._renew(deadline))
            renewal.add_done_callback(_observed)
            # The renewal is bounded by this caller's own deadline (the HTTP client enforces it), so this caller
            # waits for all of it and sees its own failure, a timeout included, as it is. The shield keeps a
            # cancelled caller from cancelling a renewal that others may have joined meanwhile.
            return (await asyncio.shield(renewal)).value
        try:
            # A joining caller's deadline may come before the renewal's: it stops waiting, the renewal goes on.
            return (await asyncio.wait_for(asyncio.shield(renewal), deadline - time.monotonic())).value
        except TimeoutError:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, "no time left waiting for an access token") from None

    def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` (a token the backend answered 401 to) unless a newer one replaced it already."""
        if self._token is not None and self._token.value == rejected:
            self._token = None

    def clear(self) -> None:
        """Forget the cached token."""
        self._token = None

    async def _renew(self, deadline: float) -> Token:
        try:
            token = await self._request(deadline)
        finally:
            # Cleared before the renewal's callers wake up, so a caller after a failure starts a renewal of its own.
            self._renewal = None
        self._token = token
        return token

    async def _request(self, deadline: float) -> Token:
        endpoint = self._endpoint
        form = urlencode(
            {
                "client_id": endpoint.client_id,
                "client_secret": endpoint.client_secret.get_secret_value(),
                "grant_type": "client_credentials",
                "scope": endpoint.scopes,
            }
        ).encode("ascii")
        asked_at = time.monotonic()
        answer = await self._http.request("POST", endpoint.url, form, FORM_HEADERS, deadline)
        if answer.status != 200:
            raise _token_refusal(answer.status, answer.body)
        parsed = read_answer(TokenAnswer, answer.body, "token endpoint")
        if parsed.token_type.lower() != "bearer":
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"token endpoint: token_type {parsed.token_type!r}")
        # Renew a margin before expiry, but never sooner than half-way, so short-lived tokens still get used.
        lifetime = float(parsed.expires_in)
        margin = min(endpoint.renew_margin_seconds, lifetime / 2)
        return Token(value=parsed.access_token, renew_at=asked_at + lifetime - margin)


def _observed(renewal: asyncio.Task[Token]) -> None:
    # Each waiter is raised a failure through its own shield; retrieving it here too keeps asyncio from logging
    # "exception was never retrieved" when every caller had stopped waiting (cancelled, or past its deadline).
    if not renewal.cancelled():
        renewal.exception()


def _token_refusal(status: int, body: bytes) -> GatewayError:
    """RFC 6749 §5.2 error (``invalid_client``, ``invalid_scope``…) as PROVIDER_FAULT; an answer that is not
    one (a 5xx page) means the token server is not serving."""
    try:
        document = loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        description = document.get("error_description")
        message = f"token endpoint refused: {document['error']}" + (f" ({description})" if isinstance(description, str) else "")
        return GatewayError(
            ErrorCode.PROVIDER_FAULT,
            f"token endpoint answered HTTP {status}",
            sub_error=ErrorInfo(code=document["error"][:50], message=message[:500], date=datetime.now(UTC)),
        )
    if status >= 500:
        return GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"token endpoint answered HTTP {status}")
    return GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"token endpoint answered HTTP {status} without an OAuth error")
