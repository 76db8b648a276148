"""Outbound SOAP calls over a pooled HTTP client, each bounded by the time left in its budget."""
from __future__ import annotations

import time
from dataclasses import dataclass

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

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes


class SoapClient:
    """A thread-safe pool of keep-alive connections to recipients (providers, PUSH endpoints)."""

    def __init__(self, pool_maxsize: int, connect_timeout: float, max_response_bytes: int) -> None:
        self._pool = urllib3.PoolManager(num_pools=64, maxsize=pool_maxsize, block=False, retries=False)
        self._connect_timeout = connect_timeout
        self._max_response_bytes = max_response_bytes

    def post(self, url: str, body: bytes, deadline: float) -> HttpAnswer:
        """POST ``body`` to ``url``; finish before ``deadline`` (a ``time.monotonic()`` value) or raise
        PROVIDER_TIMEOUT; a connection that cannot be made raises PROVIDER_UNREACHABLE."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, "no time left in the exchange budget")
        timeout = urllib3.Timeout(connect=min(self._connect_timeout, remaining), read=remaining, total=remaining)
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=SOAP_HEADERS, timeout=timeout, preload_content=False, redirect=False
            )
            try:
                content = response.read(self._max_response_bytes + 1)
            finally:
                response.release_conn()
        except (ReadTimeoutError, TimeoutError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, f"no answer from {url} in {remaining:.1f} s") from exc
        except ConnectTimeoutError as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"connecting to {url} timed out") from exc
        except MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, ReadTimeoutError):
                raise GatewayError(ErrorCode.PROVIDER_TIMEOUT, f"no answer from {url} in {remaining:.1f} s") from exc
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {_reason(reason)}") from exc
        except (NewConnectionError, ProtocolError, HTTPError, OSError) as exc:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{url}: {_reason(exc)}") from exc
        if len(content) > self._max_response_bytes:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"answer larger than {self._max_response_bytes} bytes")
        return HttpAnswer(status=response.status, body=content)

    def close(self) -> None:
        self._pool.clear()


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "connection failed"
    text = str(exc)
    # urllib3 prefixes messages with object reprs; keep the human part.
    return text.split(">: ", 1)[-1][:300]
