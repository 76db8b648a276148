"""Addresses the gateway publishes, for printing and for clients."""
from __future__ import annotations

from gateway.config import Settings
from gateway.soap.contracts import SERVICE_WSDL_BY_PATH


def base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def wsdl_addresses(settings: Settings) -> list[str]:
    """The ``?wsdl`` address of every channel endpoint."""
    return [f"{base_url(settings)}{path}?wsdl" for path in SERVICE_WSDL_BY_PATH]
