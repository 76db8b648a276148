"""The ``payments`` back-office adapter: an Agent paying services through a payment processing centre
(protocol API v20: services, service, balance, check, pay with status polling, operatorByPhone).

See docs/adapters/payments.md for the payload, the options and the error mapping.
"""
from __future__ import annotations

from collections.abc import Mapping

from gateway.adapters.payload import PayloadSchema
from gateway.adapters.payments.adapter import ADAPTER_NAME, PaymentsAdapter
from gateway.adapters.payments.options import parse_options
from gateway.outbound.async_client import HttpRequests

__all__ = ["PaymentsAdapter", "create"]


def create(options: Mapping[str, str], http: HttpRequests) -> PaymentsAdapter:
    """Build the adapter from the delivery point's ``adapter`` options; ValueError says what is wrong."""
    return PaymentsAdapter(parse_options(options), http, PayloadSchema.of(ADAPTER_NAME))
