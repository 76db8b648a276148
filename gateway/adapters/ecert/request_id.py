"""``x-request-id`` values: the backend's idempotency key for task creation.

The ИС ЭС server answers a repeated ``x-request-id`` with an identical body with the 201 it gave the first time,
naming the same task, and creates nothing new (spec open question 22). A create, edit or block sent again after a
crash or a lost answer must therefore carry the same ``x-request-id`` as the first sending: it is derived from the
gateway's stable identity of the request, never drawn afresh per attempt.
"""
from __future__ import annotations

import hashlib
import uuid

# Separates these ids from any other hash of the same key; a new protocol version gets a new domain.
_DOMAIN = b"gateway:ecert:1.2.1-Y:x-request-id\n"


def task_request_id(path: str, request_key: str | None) -> str:
    """The ``x-request-id`` of the task request to ``path`` for the request ``request_key``: always the same
    lower-case UUID (version 4 form, which the protocol's pattern requires) for the same two values; a random
    one when the caller has no stable key (each such call is a new request)."""
    if request_key is None:
        return str(uuid.uuid4())
    digest = hashlib.sha256(_DOMAIN + path.encode("utf-8") + b"\n" + request_key.encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))
