"""Back-office adapter for electronic certificates: the "ИС ЭС" REST API 1.2.1-Y (create, edit and block
certificates as backend tasks, task statuses and results, detailed statement), with detached JWS HS512 over
RFC 8785 JSON. Settings and payloads: docs/adapters/ecert.md."""
from __future__ import annotations

from collections.abc import Mapping

from gateway.adapters.ecert.adapter import EcertAdapter
from gateway.adapters.ecert.options import parse_options
from gateway.outbound.async_client import HttpRequests

__all__ = ["EcertAdapter", "create"]


def create(options: Mapping[str, str], http: HttpRequests) -> EcertAdapter:
    """The adapter for one delivery point; ValueError names what is wrong with ``options``."""
    parsed, key = parse_options(options)
    return EcertAdapter(parsed, key, http)
