"""What each security mode demands (gateway-rules.md §3.3): the one table the channels and the delivery worker
consult, mirroring the table in ``docs/security.md`` (``tests/test_security_modes.py`` holds the two together).

A service's mode says what its callers must present and what the gateway does to its answer; a delivery point's
mode says what the gateway does to what it sends on (forwarded sync requests, PUSH deliveries, status
notifications)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServicePolicy:
    """What a service's security mode demands of a call to it."""

    caller_signs: bool  # the caller's transport signature is required and verified
    caller_encrypts: bool  # the caller's Body must arrive encrypted to the gateway's certificate
    gateway_signs_answer: bool
    gateway_encrypts_answer: bool  # to the caller's RSA certificate, when it has one


@dataclass(frozen=True)
class DeliveryPolicy:
    """What a delivery point's security mode makes the gateway do to what it sends there."""

    gateway_signs: bool  # Layout A, with the RSA or GOST key the point's signatureAlgorithm names
    gateway_encrypts: bool  # to the recipient's registered certificate


SERVICE_MODES: dict[int, ServicePolicy] = {
    0: ServicePolicy(caller_signs=False, caller_encrypts=False, gateway_signs_answer=False, gateway_encrypts_answer=False),
    1: ServicePolicy(caller_signs=False, caller_encrypts=False, gateway_signs_answer=True, gateway_encrypts_answer=False),
    2: ServicePolicy(caller_signs=True, caller_encrypts=False, gateway_signs_answer=True, gateway_encrypts_answer=False),
    3: ServicePolicy(caller_signs=True, caller_encrypts=True, gateway_signs_answer=True, gateway_encrypts_answer=True),
}

DELIVERY_MODES: dict[int, DeliveryPolicy] = {
    0: DeliveryPolicy(gateway_signs=False, gateway_encrypts=False),
    1: DeliveryPolicy(gateway_signs=True, gateway_encrypts=False),
    2: DeliveryPolicy(gateway_signs=True, gateway_encrypts=False),
    3: DeliveryPolicy(gateway_signs=True, gateway_encrypts=True),
}


def _nearest(mode: int) -> int:
    # The registry admits 0-3; a value written into the database around it is read as the nearest mode (as the
    # threshold comparisons this table replaced did), never as an error that would stall a delivery queue.
    return min(max(mode, 0), 3)


def service_policy(mode: int) -> ServicePolicy:
    """The policy of a service's mode."""
    return SERVICE_MODES[_nearest(mode)]


def delivery_policy(mode: int) -> DeliveryPolicy:
    """The policy of a delivery point's mode."""
    return DELIVERY_MODES[_nearest(mode)]
