"""The outbound clients a process builds from its settings: one place, for the server's workers and the delivery
worker alike."""
from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config import Settings
from gateway.outbound.async_client import AsyncHttpClient


def provider_trust(ca_file: Path | None) -> ssl.SSLContext:
    """How HTTPS providers are verified: against ``ca_file`` (``GATEWAY_PROVIDER_CA_FILE``) or the system's store."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def provider_client(settings: Settings) -> AsyncHttpClient:
    """The client SOAP providers and PUSH recipients are awaited through (delivery points may name their own trust)."""
    return AsyncHttpClient(
        settings.provider_connect_timeout_seconds, settings.max_provider_response_bytes, provider_trust(settings.provider_ca_file)
    )


def backend_client(settings: Settings) -> AsyncHttpClient:
    """The client the adapters' back offices are awaited through (HTTPS verified against the system's store)."""
    return AsyncHttpClient(settings.provider_connect_timeout_seconds, settings.max_provider_response_bytes)
