"""The processing centre's result codes (protocol v20, Table 1) and what each means for the adapter.

The spec marks every code final or not: a final code is what the same request will always get again; a non-final
one means "send exactly the same body again later". The emulator uses the same table, so the two cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResultCode:
    """One row of Table 1."""

    code: int
    meaning: str
    final: bool


SUCCESS = 0
IN_PROGRESS = 1
BAD_ACCOUNT_FORMAT = 4
ACCOUNT_NOT_FOUND = 5
PROHIBITED_BY_PROVIDER = 7
PROHIBITED_TECHNICAL = 8
SERVICE_NOT_IMPLEMENTED = 130
SECURITY_REVIEW = 153
SERVICE_PROHIBITED = 155
REQUEST_DATA_ERROR = 202
DUPLICATE_TRANSACTION = 215
INSUFFICIENT_FUNDS = 220
BALANCE_NOT_TOPPED_UP = 250
AMOUNT_TOO_SMALL = 241
AMOUNT_TOO_LARGE = 242
BAD_COMMISSION = 255
OTHER_ERROR = 300

RESULT_CODES: dict[int, ResultCode] = {
    row.code: row
    for row in (
        ResultCode(SUCCESS, "Success", True),
        ResultCode(IN_PROGRESS, "Request being processed; repeat the request later", False),
        ResultCode(BAD_ACCOUNT_FORMAT, "Invalid format of the subscriber identifier", True),
        ResultCode(ACCOUNT_NOT_FOUND, "Subscriber identifier not found", True),
        ResultCode(PROHIBITED_BY_PROVIDER, "Payment acceptance prohibited by the provider", True),
        ResultCode(PROHIBITED_TECHNICAL, "Payment acceptance prohibited for technical reasons", True),
        ResultCode(SERVICE_NOT_IMPLEMENTED, "Work with this service is not implemented", True),
        ResultCode(SECURITY_REVIEW, "Payment under review by the security service", False),
        ResultCode(SERVICE_PROHIBITED, "Payment acceptance for this service is prohibited", True),
        # Final on a first sending only; on a repeat of a pending pay the payment goes on (spec §5).
        ResultCode(REQUEST_DATA_ERROR, "Request data error", True),
        ResultCode(DUPLICATE_TRANSACTION, "A transaction with this number already exists", True),
        ResultCode(INSUFFICIENT_FUNDS, "Insufficient funds of the Agent", False),
        ResultCode(BALANCE_NOT_TOPPED_UP, "The Agent's balance was not topped up", True),
        ResultCode(AMOUNT_TOO_SMALL, "Amount too small", True),
        ResultCode(AMOUNT_TOO_LARGE, "Amount too large", True),
        ResultCode(BAD_COMMISSION, "Unacceptable additional commission", False),
        ResultCode(OTHER_ERROR, "Other error", True),
    )
}

NON_FINAL = frozenset(code for code, row in RESULT_CODES.items() if not row.final)


def is_final(code: int) -> bool:
    """Whether ``code`` is a documented final code (unknown codes are not: their finality is not known)."""
    row = RESULT_CODES.get(code)
    return row is not None and row.final
