"""The gateway's one catalogue of error codes (SCExxx, the style ShEP participants use).

Every refusal or failure the gateway reports is a :class:`GatewayError` carrying one of these codes; the SOAP
layer turns it into a SOAP 1.1 Fault whose ``detail`` holds the operation's ErrorInfo element.
``docs/errors.md`` documents the same table for integrators; a test keeps the two in step.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class FaultSide(enum.Enum):
    """Who is to blame, which decides the SOAP faultcode."""

    CLIENT = "Client"
    SERVER = "Server"


class ErrorCode(enum.Enum):
    """Catalogue entries: (code, side, message sent in ``errorMessage``)."""

    MALFORMED_MESSAGE = ("SCE001", FaultSide.CLIENT, "The message does not conform to the format")
    BAD_CREDENTIALS = ("SCE002", FaultSide.CLIENT, "Sender authentication failed")
    SENDER_NOT_ALLOWED = ("SCE003", FaultSide.CLIENT, "The sender is not a registered user of the service")
    UNKNOWN_SERVICE = ("SCE004", FaultSide.CLIENT, "The service does not exist")
    CERTIFICATE_NOT_CURRENT = ("SCE005", FaultSide.CLIENT, "The transport signature's certificate is not current")
    TRANSPORT_SIGNATURE_INVALID = ("SCE006", FaultSide.CLIENT, "The transport signature is invalid")
    MESSAGE_NOT_SIGNED = ("SCE007", FaultSide.CLIENT, "The message is not signed")
    UNKNOWN_ROUTE = ("SCE008", FaultSide.CLIENT, "The route does not exist for this service")
    PROVIDER_UNREACHABLE = ("SCE009", FaultSide.SERVER, "The service provider is unreachable")
    PROVIDER_TIMEOUT = ("SCE010", FaultSide.SERVER, "The service provider did not answer in time")
    PROVIDER_FAULT = ("SCE011", FaultSide.SERVER, "The service provider answered with a fault")
    BODY_TOO_LARGE = ("SCE012", FaultSide.CLIENT, "The message is larger than the gateway accepts")
    PROVIDER_RESPONSE_INVALID = ("SCE013", FaultSide.SERVER, "The service provider's answer is not a valid message")
    SERVICE_NOT_ON_CHANNEL = ("SCE014", FaultSide.CLIENT, "The service is not available on this channel")
    UNKNOWN_MESSAGE = ("SCE020", FaultSide.CLIENT, "The message does not exist")
    UNKNOWN_CHAIN = ("SCE021", FaultSide.CLIENT, "The message chain does not exist")
    CERTIFICATE_NOT_OF_SENDER = ("SCE022", FaultSide.CLIENT, "The certificate does not belong to the sender's organisation")
    CERTIFICATE_NOT_TRUSTED = ("SCE024", FaultSide.CLIENT, "The certificate is not issued by a trusted certification authority")
    REPLAYED_MESSAGE = ("SCE023", FaultSide.CLIENT, "The message has been received before")
    MESSAGE_NOT_ENCRYPTED = ("SCE025", FaultSide.CLIENT, "The message is not encrypted")
    DECRYPTION_FAILED = ("SCE026", FaultSide.CLIENT, "The message cannot be decrypted")
    PROVIDER_BUSY = ("SCE027", FaultSide.SERVER, "The service provider has too many calls in progress; try again later")
    GATEWAY_BUSY = ("SCE028", FaultSide.SERVER, "The gateway is at its capacity; try again later")
    UNSUPPORTED_OPERATION = ("SCE018", FaultSide.CLIENT, "The operation is not supported at this address")
    HEADER_NOT_UNDERSTOOD = ("SCE019", FaultSide.CLIENT, "A mandatory SOAP header was not understood")
    INTERNAL_ERROR = ("SCE909", FaultSide.SERVER, "Internal gateway error")

    def __init__(self, code: str, side: FaultSide, message: str) -> None:
        self.code = code
        self.side = side
        self.message = message


@dataclass(frozen=True)
class ErrorInfo:
    """The wire ErrorInfo structure (errorCode, errorMessage, errorData?, errorDate, subError?, sessionId?)."""

    code: str
    message: str
    date: datetime
    data: str | None = None
    sub_error: ErrorInfo | None = None
    session_id: str | None = None


@dataclass
class GatewayError(Exception):
    """A refusal or failure with its catalogue code; ``data`` says what exactly was wrong."""

    error: ErrorCode
    data: str | None = None
    sub_error: ErrorInfo | None = None

    def __str__(self) -> str:
        return f"{self.error.code} {self.error.message}" + (f": {self.data}" if self.data else "")
