"""One live adapter per delivery point, built on first use from the registry's settings and rebuilt when those
change (the registry can be edited while the gateway runs)."""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

from gateway.adapters.base import BackendAdapter
from gateway.adapters.catalogue import create_adapter
from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, GatewayError
from registry.snapshot import DeliveryPointView

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Only variables meant for adapters can be named: a registry administrator must not be able to route, say, the
# database URL or the signing key's passphrase into a backend URL.
ADAPTER_VARIABLE_PREFIX = "GATEWAY_ADAPTER_"


def resolve_options(options: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Replace each ``${NAME}`` with the environment variable NAME (``GATEWAY_ADAPTER_…`` only): secrets stay out
    of the registry."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith(ADAPTER_VARIABLE_PREFIX):
            raise ValueError(f"${{{name}}}: only {ADAPTER_VARIABLE_PREFIX}* environment variables can be named")
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set")
        return environ[name]

    return {key: _ENV_REFERENCE.sub(value_of, value) for key, value in options.items()}


class AdapterPool:
    """The adapters of this process, by delivery point, and the client they call their back offices through."""

    def __init__(self, http: AsyncHttpClient) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._adapters: dict[int, tuple[tuple[str, tuple[tuple[str, str], ...], str], BackendAdapter]] = {}

    def adapter_for(self, point: DeliveryPointView) -> BackendAdapter:
        """The adapter of ``point``; a misconfigured one is an internal error naming what is wrong."""
        settings = (point.adapter_name or "", tuple(sorted((point.adapter_options or {}).items())), point.tls_trust)
        known = self._adapters.get(point.id)
        if known is not None and known[0] == settings:
            return known[1]
        with self._lock:
            known = self._adapters.get(point.id)
            if known is not None and known[0] == settings:
                return known[1]
            try:
                # The back office's HTTPS is verified against the CAs the point names, if any.
                adapter = create_adapter(settings[0], resolve_options(dict(settings[1])), self._http.trusting(point.tls_trust))
            except ValueError as exc:
                raise GatewayError(ErrorCode.INTERNAL_ERROR, f"delivery point {point.id}: adapter settings: {exc}") from exc
            if known is not None:
                known[1].close()
            self._adapters[point.id] = (settings, adapter)
            return adapter

    async def close(self) -> None:
        """Release the adapters and their client's connections (on the loop that used them)."""
        with self._lock:
            adapters = [adapter for _, adapter in self._adapters.values()]
            self._adapters.clear()
        for adapter in adapters:
            adapter.close()
        await self._http.close()
