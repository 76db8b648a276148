"""The ecert adapter's delivery-point settings, as the registry writes them (all strings)."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# RFC 7518 §3.2: an HS512 key must be at least as long as the hash output.
MIN_KEY_BYTES = 64


class EcertOptions(BaseModel):
    """Validated adapter options; see docs/adapters/ecert.md for each key."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    base_url: str = Field(alias="baseUrl")
    api_key: str = Field(alias="apiKey", min_length=1)
    jws_key: str = Field(alias="jwsKey", min_length=1, repr=False)
    jws_key_encoding: Literal["utf8", "hex", "base64"] = Field(default="utf8", alias="jwsKeyEncoding")
    timeout_seconds: float = Field(default=30.0, alias="timeoutSeconds", gt=0, le=600)
    poll_seconds: float = Field(default=5.0, alias="pollSeconds", gt=0, le=3600)
    max_poll_seconds: float = Field(default=60.0, alias="maxPollSeconds", gt=0, le=86400)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://host/api/1.2.1-Y/ec")
        return value.rstrip("/")

    def key_bytes(self) -> bytes:
        """The shared HMAC key decoded from ``jwsKey`` as ``jwsKeyEncoding`` says."""
        try:
            if self.jws_key_encoding == "hex":
                key = bytes.fromhex(self.jws_key)
            elif self.jws_key_encoding == "base64":
                # Standard and URL-safe alphabets both accepted, padding optional.
                text = self.jws_key.replace("-", "+").replace("_", "/")
                key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            else:
                key = self.jws_key.encode("utf-8")
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"jwsKey is not valid {self.jws_key_encoding}") from exc
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"jwsKey must be at least {MIN_KEY_BYTES} bytes for HS512, got {len(key)}")
        return key


def parse_options(options: Mapping[str, str]) -> tuple[EcertOptions, bytes]:
    """Validate ``options``; ValueError names every problem without echoing secret values."""
    try:
        parsed = EcertOptions.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"ecert adapter options: {problems}") from None
    if parsed.max_poll_seconds < parsed.poll_seconds:
        raise ValueError("ecert adapter options: maxPollSeconds must not be below pollSeconds")
    try:
        key = parsed.key_bytes()
    except ValueError as exc:
        raise ValueError(f"ecert adapter options: {exc}") from None
    return parsed, key
