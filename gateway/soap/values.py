"""Simple values on the wire: dateTime and the ShEP ``guid`` (a UUID in braces)."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

_DATETIME = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
)


def new_session_id() -> str:
    """A fresh ShEP session id: ``{uuid}``."""
    return "{" + str(uuid.uuid4()) + "}"


def format_datetime(value: datetime) -> str:
    """xs:dateTime with milliseconds and an explicit offset (UTC when the value is naive)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def is_xs_datetime(text: str) -> bool:
    """Whether ``text`` is a lexically valid xs:dateTime (with or without a time zone)."""
    return bool(_DATETIME.match(text))


def parse_datetime(text: str) -> datetime:
    """Parse xs:dateTime leniently (``Z``, offsets, or none: then it is taken as UTC)."""
    text = text.strip()
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
