"""The security-mode policy table (gateway/security/modes.py) is the one in docs/security.md, row for row."""
from __future__ import annotations

from pathlib import Path
from typing import get_args

from gateway.security.modes import DELIVERY_MODES, SERVICE_MODES, delivery_policy, service_policy
from registry.schema import DeliveryPointEntry, ServiceEntry

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"
HEADER = "| mode | caller signs | caller encrypts |"


def documented_rows() -> dict[int, list[bool]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER)) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        mode, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert set(cells) <= {"yes", "no"}, line
        rows[int(mode)] = [cell == "yes" for cell in cells]
    return rows


def test_the_code_applies_the_documented_table() -> None:
    code = {
        mode: [service.caller_signs, service.caller_encrypts, service.gateway_signs_answer,
               service.gateway_encrypts_answer, DELIVERY_MODES[mode].gateway_signs, DELIVERY_MODES[mode].gateway_encrypts]
        for mode, service in SERVICE_MODES.items()
    }
    assert documented_rows() == code


def test_every_mode_the_registry_admits_has_a_policy() -> None:
    assert set(SERVICE_MODES) == set(get_args(ServiceEntry.model_fields["security_mode"].annotation))
    assert set(DELIVERY_MODES) == set(get_args(DeliveryPointEntry.model_fields["security_mode"].annotation))


def test_a_mode_outside_the_registry_s_range_reads_as_the_nearest() -> None:
    """Written into the database around the registry's checks, such a mode must not stall a delivery queue."""
    assert service_policy(7) == SERVICE_MODES[3] and delivery_policy(7) == DELIVERY_MODES[3]
    assert service_policy(-1) == SERVICE_MODES[0] and delivery_policy(-1) == DELIVERY_MODES[0]
