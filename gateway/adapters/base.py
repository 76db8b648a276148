"""What every back-office adapter offers the gateway: a delivery point that speaks a backend's REST/JSON protocol
instead of SOAP.

A service's ``data`` element arrives in the adapter's own payload namespace (its schema is
``xsd/adapters/<name>.xsd``, one request element and one response element per backend operation). The adapter
validates it, calls the backend and returns an :class:`AdapterAnswer` whose ``data`` is valid against the same
schema. When the backend's result is not final yet (a task still running, a payment in progress), the answer
carries a :class:`PendingWork`; the gateway keeps it durably and calls :meth:`BackendAdapter.poll` on a schedule
until the answer is final, then delivers that answer to the initiator as a RESPONSE in the message chain.

``handle`` and ``poll`` are coroutines on the process's event loop: a call waiting for its back office holds no
thread (the adapters' HTTP goes through :class:`~gateway.outbound.async_client.AsyncHttpClient`, on that loop).

Failures are :class:`~gateway.errors.GatewayError`: ``PROVIDER_UNREACHABLE`` / ``PROVIDER_TIMEOUT`` when the
backend cannot be reached or answer in time, ``PROVIDER_FAULT`` with a ``sub_error`` carrying the backend's own
code when the backend refuses, ``PROVIDER_RESPONSE_INVALID`` when its answer is malformed or its signature is
bad, ``MALFORMED_MESSAGE`` when ``data`` does not match the payload schema.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lxml import etree


@dataclass(frozen=True)
class PendingWork:
    """A backend result still to come: what :meth:`BackendAdapter.poll` needs to ask for it again."""

    reference: dict[str, Any]  # JSON-serialisable (kept in the database between polls)
    poll_after_seconds: float


@dataclass(frozen=True)
class AdapterAnswer:
    """The adapter's answer to one request: the response ``data`` element and the status the caller sees."""

    data: etree._Element
    status_code: str = "OK"
    status_message: str = "Processed"
    pending: PendingWork | None = None


class BackendAdapter(Protocol):
    """One backend behind a delivery point."""

    name: str
    namespace: str  # target namespace of xsd/adapters/<name>.xsd

    async def handle(self, data: etree._Element, deadline: float, request_key: str | None = None) -> AdapterAnswer:
        """Carry out the operation ``data`` names (its element name), finishing before ``deadline``
        (a ``time.monotonic()`` value).

        ``request_key`` is the gateway's stable identity of the request (the stored REQUEST's messageId on the
        asynchronous channel). A delivery worker that dies mid-call leaves its task to another, which calls
        ``handle`` again with the same ``data`` and key: whatever the first call created at the backend must
        then be found again, never created a second time (docs/adapters.md, "Repeats")."""
        ...

    async def poll(self, reference: Mapping[str, Any], attempt: int, deadline: float) -> AdapterAnswer:
        """Ask again for a result still pending (``attempt`` counts from 1); the answer is pending again while
        the backend's result is not final."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class AdapterSettings:
    """A delivery point's adapter configuration as the registry holds it: the adapter's name and its
    backend settings (base URL, credentials, keys, timeouts; each adapter documents its own keys).
    Secret values are written ``${ENV_NAME}`` in the registry and resolved from the environment."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)
