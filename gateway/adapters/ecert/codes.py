"""ИС ЭС codes: business error codes (spec §7.2), task statuses (§9.2) and the look-alike letters the source mixes
between Cyrillic and Latin (§14)."""
from __future__ import annotations

# Cyrillic capitals that look like Latin ones; received codes are compared in their Latin spelling.
_LOOKALIKES = str.maketrans({"Е": "E", "С": "C", "Т": "T", "Р": "P", "В": "B", "А": "A", "У": "Y"})

# ErrorCode enum of the OpenAPI appendix, with the English reading used as the sub-error message.
BUSINESS_ERRORS: dict[str, str] = {
    "EC00200": "System error",
    "EC00201": "Request does not match the data schema",
    "EC00202": "Unsupported request protocol version",
    "EC00203": "Wrong request type",
    "EC00216": "No certificate found",
    "EC00219": "Certificate is blocked",
    "EC00220": "Certificate is not active",
    "EC00272": "Operation unavailable",
}

ACKNOWLEDGEMENTS = frozenset({"REQUEST_IS_QUEUED", "REQUEST_IS_ACCEPTED"})

RUNNING_STATUSES = frozenset(
    {"requestIsQueued", "requestIsAcceptedBySmev", "underProcessing", "responseIsAcceptedBySmev", "messageIsDelivered"}
)
EXECUTED = "taskIsExecuted"
# Final without results: the task failed or its message is gone.
FAILED_STATUSES = frozenset(
    {"doesNotExist", "requestIsRejectedBySmev", "responseIsRejectedBySmev", "cancelled", "messageIsArchived"}
)
TASK_STATUSES = RUNNING_STATUSES | FAILED_STATUSES | {EXECUTED}

TASK_TYPES = ("ec_create", "ec_status", "ec_edit", "ec_block", "ec_register_extract", "ec_condition_notice")


def latin(code: str) -> str:
    """``code`` with Cyrillic look-alike capitals replaced by Latin ones (``ЕС00201`` → ``EC00201``)."""
    return code.strip().translate(_LOOKALIKES)
