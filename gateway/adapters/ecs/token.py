"""OAuth 2.0 client-credentials tokens (spec §7.3, §10.3): cached, renewed before expiry, one renewal at a time.

Callers that need a token while a renewal is in flight wait for that renewal instead of starting their own, so
N concurrent calls with an expired token cost one token request. A token the backend rejects is invalidated
only if it is still the current one, so N concurrent 401s also cost one renewal.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from pydantic import SecretStr

from gateway.adapters.ecs.wire import TokenAnswer, loads, read_answer
from gateway.outbound.http_client import HttpClient
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
    """The current access token of one (token URL, client, scopes), thread-safe."""

    def __init__(self, endpoint: TokenEndpoint, http: HttpClient) -> None:
        self._endpoint = endpoint
        self._http = http
        self._condition = threading.Condition()
        self._token: Token | None = None
        self._renewing = False
        # Bumped at the end of every renewal, so a waiter knows "its" renewal finished (with this outcome).
        self._generation = 0
        self._failure: GatewayError | None = None

    def get(self, deadline: float) -> str:
        """A valid token, renewing it (or waiting for the renewal in flight) before ``deadline``."""
        with self._condition:
            while True:
                token = self._token
                if token is not None and time.monotonic() < token.renew_at:
                    return token.value
                if not self._renewing:
                    self._renewing = True
                    break
                generation = self._generation
                while self._renewing and self._generation == generation:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, "no time left waiting for an access token")
                    self._condition.wait(remaining)
                if self._failure is not None and self._generation == generation + 1:
                    raise self._failure
        return self._renew(deadline)

    def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` (a token the backend answered 401 to) unless a newer one replaced it already."""
        with self._condition:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def clear(self) -> None:
        """Forget the cached token."""
        with self._condition:
            self._token = None

    def _renew(self, deadline: float) -> str:
        token: Token | None = None
        failure: GatewayError | None = None
        try:
            token = self._request(deadline)
            return token.value
        except GatewayError as exc:
            failure = exc
            raise
        finally:
            with self._condition:
                if token is not None:
                    self._token = token
                self._failure = failure
                self._renewing = False
                self._generation += 1
                self._condition.notify_all()

    def _request(self, deadline: float) -> Token:
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
        answer = self._http.request("POST", endpoint.url, form, FORM_HEADERS, deadline)
        if answer.status != 200:
            raise _token_refusal(answer.status, answer.body)
        parsed = read_answer(TokenAnswer, answer.body, "token endpoint")
        if parsed.token_type.lower() != "bearer":
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"token endpoint: token_type {parsed.token_type!r}")
        # Renew a margin before expiry, but never sooner than half-way, so short-lived tokens still get used.
        lifetime = float(parsed.expires_in)
        margin = min(endpoint.renew_margin_seconds, lifetime / 2)
        return Token(value=parsed.access_token, renew_at=asked_at + lifetime - margin)


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
