"""HTTP helpers of the emulators, which run as real threaded HTTP/1.1 servers on loopback through the gateway's
cheroot helper (``gateway.serving``)."""
from __future__ import annotations

from typing import Any


def reply(start_response: Any, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> list[bytes]:
    """Answer a WSGI request with ``body``."""
    start_response(f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
