"""Detached JWS of ИС ЭС messages (spec §4): HS512 over the RFC 8785 canonical form of the JSON body, with an
unencoded payload (RFC 7797 ``b64:false``) and the payload part left empty (RFC 7515 appendix F).

joserfc signs and verifies; this module only fixes the protected header, canonicalises the body and checks the
header parameters the protocol makes mandatory."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import rfc8785
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS512"
# The constant protected header the spec prescribes, serialised without spaces as in its response definition.
PROTECTED_HEADER = {"b64": False, "crit": ["b64"], "typ": "JWT", "alg": ALGORITHM}


class SignatureError(ValueError):
    """A detached JWS that is malformed, uses other parameters than the protocol's, or does not verify."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 form of a JSON value (raises ValueError for values JCS cannot represent, e.g. ints > 2^53)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not representable in RFC 8785 JSON: {exc}") from exc


def canonical_body(body: bytes) -> bytes:
    """The canonical form of a received JSON body (an empty body stays empty: a bodiless GET signs ``H.``)."""
    if not body:
        return b""
    try:
        return canonical_json(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc


class DetachedSigner:
    """Signs and verifies ``x-jws-signature`` values with the shared HMAC key."""

    def __init__(self, key: bytes) -> None:
        self._key = OctKey.import_key(key)

    def sign(self, payload: bytes) -> str:
        """``H..S`` over the canonical payload bytes ``payload``."""
        compact = jws.serialize_compact(PROTECTED_HEADER, payload, self._key, algorithms=[ALGORITHM])
        header, _, signature = compact.split(".")
        return f"{header}..{signature}"

    def verify(self, value: str, payload: bytes) -> None:
        """Raise SignatureError unless ``value`` is a detached HS512 ``b64:false`` JWS of ``payload``.

        The received protected header is used as sent (the spec writes it with and without spaces), but its
        parameters must be the protocol's."""
        parts = value.strip().split(".")
        if len(parts) != 3 or parts[1] != "" or not parts[0] or not parts[2]:
            raise SignatureError("not a detached compact JWS (header..signature)")
        header = _decode_header(parts[0])
        if header.get("alg") != ALGORITHM or header.get("b64") is not False or "b64" not in (header.get("crit") or []):
            raise SignatureError(f"protected header must be HS512 with b64:false and crit [b64], got {header}")
        try:
            jws.deserialize_compact(value.strip(), self._key, payload=payload, algorithms=[ALGORITHM])
        except JoseError as exc:
            raise SignatureError(f"signature does not verify: {exc.error}") from exc


def _decode_header(segment: str) -> dict[str, Any]:
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"protected header is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise SignatureError("protected header is not a JSON object")
    return header
