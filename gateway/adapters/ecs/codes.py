"""The backend's error JSON (spec §7.2) and Appendix 7 codes (spec §8), mapped one by one to gateway errors.

``errorCode`` is an integer on the wire; the sub-error code keeps the Appendix 7 spelling (``01`` … ``08``)
so operators can look it up in the regulation. Codes 01 and 05 answer a benefit check ("no benefit", "card
inactive") and become a CheckClientBenefitsResponse; see :data:`CHECK_DENIALS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import ErrorCode, ErrorInfo, GatewayError


@dataclass(frozen=True)
class BackendCode:
    """One Appendix 7 code and its meaning; as a failure it is always PROVIDER_FAULT carrying the code."""

    code: str
    meaning: str


APPENDIX_7: dict[int, BackendCode] = {
    1: BackendCode("01", "The ЕЦС card holder has no benefit at this acceptor"),
    2: BackendCode("02", "Holder code entered wrongly: client not found"),
    3: BackendCode("03", "Reserved for future use"),
    4: BackendCode("04", "Reserved for future use"),
    5: BackendCode("05", "The ЕЦС card is in an inactive status"),
    6: BackendCode("06", "No connection to the processing centre"),
    7: BackendCode("07", "Participant ID is not in the system"),
    8: BackendCode("08", "Service type code not found"),
}

# Codes that are the backend's answer to "does this holder have a benefit here?", not a failed request.
NO_BENEFIT = 1
CARD_INACTIVE = 5
CHECK_DENIALS = frozenset({NO_BENEFIT, CARD_INACTIVE})


@dataclass(frozen=True)
class BackendError:
    """A non-2xx answer of web service A or B, as read from its error JSON (when it had one)."""

    status: int
    message: str | None
    error_code: int | None

    def sub_code(self) -> str:
        """The sub-error code: the Appendix 7 code, another backend code as sent, or ``HTTP<status>``."""
        if self.error_code is None:
            return f"HTTP{self.status}"
        known = APPENDIX_7.get(self.error_code)
        return known.code if known else str(self.error_code)

    def to_gateway_error(self, operation: str) -> GatewayError:
        """PROVIDER_FAULT carrying the backend's code and message (the spec says clients decide by body)."""
        known = APPENDIX_7.get(self.error_code) if self.error_code is not None else None
        meaning = known.meaning if known else _status_meaning(self.status)
        message = f"{meaning}: {self.message}" if self.message else meaning
        return GatewayError(
            ErrorCode.PROVIDER_FAULT,
            f"{operation}: backend answered HTTP {self.status}",
            sub_error=ErrorInfo(code=self.sub_code(), message=message[:500], date=datetime.now(UTC)),
        )


def _status_meaning(status: int) -> str:
    if status == 400:
        return "The backend refused the request as invalid"
    if status == 401:
        return "The backend refused the access token"
    if status == 403:
        return "The backend refused access (IP allow list, scope or connection type)"
    if status == 404:
        return "The backend has no such method"
    return "The backend failed"
