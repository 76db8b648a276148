"""The payments adapter's delivery-point settings, as the registry writes them (all strings)."""
from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# RFC 7230 token characters: what an HTTP header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
AUTHORIZATION = "Authorization"


class PaymentsOptions(BaseModel):
    """Validated adapter options; docs/adapters/payments.md describes each key."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    base_url: str = Field(alias="baseUrl")
    # The Agent's token from its cabinet; absent for an Agent the processing centre authorises by IP address.
    token: str | None = Field(default=None, alias="token", min_length=1, repr=False)
    token_header: str = Field(default=AUTHORIZATION, alias="tokenHeader")
    timeout_seconds: float = Field(default=30.0, alias="timeoutSeconds", gt=0, le=600)
    poll_seconds: float = Field(default=5.0, alias="pollSeconds", gt=0, le=3600)
    max_poll_seconds: float = Field(default=900.0, alias="maxPollSeconds", gt=0, le=86400)
    give_up_seconds: float = Field(default=86400.0, alias="giveUpSeconds", gt=0, le=30 * 86400)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the processing address, an http:// or https:// URL (without /api/v20)")
        return value.rstrip("/")

    @field_validator("token_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError("must be an HTTP header name")
        return value

    @model_validator(mode="after")
    def _poll_range(self) -> PaymentsOptions:
        if self.max_poll_seconds < self.poll_seconds:
            raise ValueError("maxPollSeconds must not be below pollSeconds")
        return self

    def auth_headers(self) -> dict[str, str]:
        """The header carrying the token: ``Authorization: Bearer <token>``, or the bare token in a custom
        header when ``tokenHeader`` names one; nothing for an IP-authorised Agent."""
        if self.token is None:
            return {}
        if self.token_header.lower() == AUTHORIZATION.lower():
            return {AUTHORIZATION: f"Bearer {self.token}"}
        return {self.token_header: self.token}


def parse_options(options: Mapping[str, str]) -> PaymentsOptions:
    """Validate ``options``; ValueError names every problem without echoing secret values."""
    try:
        return PaymentsOptions.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"payments adapter options: {problems}") from None
