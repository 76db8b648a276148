"""JSON as protocol v20 writes it: amounts are numeric literals with exactly two fractional digits (``200.00``,
never ``200`` or ``200.0``), identifiers of up to 18 digits are exact integers, and nothing ever passes through a
binary float on the way in or out.

The standard library cannot write a Decimal as a bare number, so bodies are written here; they are built once
and kept byte for byte, because a retry must resend exactly the same body (spec §5).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    """``value`` with exactly two fractional digits (the caller's schema already allows no more)."""
    return value.quantize(CENT)


def dumps(value: Any) -> str:
    """Serialise dicts, lists, strings, ints, bools, None and Decimals (written as plain numeric literals with
    the scale they carry: pass amounts through :func:`money` first)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("amounts must be finite")
        return format(value, "f")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key), ensure_ascii=False)}:{dumps(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as protocol JSON")


def encode(value: Any) -> bytes:
    """The UTF-8 request body for ``value``."""
    return dumps(value).encode("utf-8")


def loads(body: bytes | str) -> Any:
    """Parse a JSON document with every fractional number as a Decimal and every integer exact.

    Raises ValueError (json.JSONDecodeError or UnicodeDecodeError) when it is not JSON."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return json.loads(text, parse_float=Decimal)
