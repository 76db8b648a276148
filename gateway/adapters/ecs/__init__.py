"""ЕЦС (Yakutia single digital service) benefit-card adapter: web service A (benefit check) and web service B
(transactions history) over REST/JSON with OAuth 2.0 client-credentials tokens. docs/adapters/ecs.md describes
its payload, options and error mapping."""
from __future__ import annotations

from collections.abc import Mapping

from gateway.adapters.ecs.adapter import EcsAdapter
from gateway.adapters.ecs.options import parse_options
from gateway.outbound.async_client import HttpRequests

__all__ = ["EcsAdapter", "create"]


def create(options: Mapping[str, str], http: HttpRequests) -> EcsAdapter:
    """Build the adapter from the delivery point's settings; ValueError says what is wrong with them."""
    return EcsAdapter(parse_options(options), http)
