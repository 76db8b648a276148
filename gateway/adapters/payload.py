"""Adapters' payload schemas (``xsd/adapters/<name>.xsd``): the ``data`` element a caller sends to an adapter
service is validated against its adapter's schema before anything is sent to the backend, and so is the
answer the adapter builds."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from lxml import etree

from gateway.adapters.base import AdapterAnswer
from gateway.config import REPO_ROOT
from gateway.errors import ErrorCode, GatewayError

ADAPTER_SCHEMAS = REPO_ROOT / "xsd" / "adapters"
Operation = Callable[[etree._Element, float], Awaitable[AdapterAnswer]]  # one backend operation: request element, deadline


class PayloadSchema:
    """One adapter's payload schema, compiled once."""

    def __init__(self, path: Path) -> None:
        # The schema files are the project's own; the hardened parser still refuses DTDs and network access.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        document = etree.parse(str(path), parser)
        self.namespace: str = document.getroot().get("targetNamespace")
        self._schema = etree.XMLSchema(document)

    @classmethod
    def of(cls, adapter_name: str) -> PayloadSchema:
        """The schema ``xsd/adapters/<adapter_name>.xsd``."""
        return cls(ADAPTER_SCHEMAS / f"{adapter_name}.xsd")

    def check_request(self, data: etree._Element) -> None:
        """Raise MALFORMED_MESSAGE, naming the first problem, unless ``data`` is valid."""
        try:
            self._schema.assertValid(data)
        except etree.DocumentInvalid as exc:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"data: {str(exc)[:500]}") from exc

    async def serve(self, operations: Mapping[str, Operation], data: etree._Element, deadline: float) -> AdapterAnswer:
        """Check ``data``, run the operation its element names, check the answer: what every adapter's
        ``handle`` does around its backend calls."""
        self.check_request(data)
        qname = etree.QName(data)
        operation = operations.get(qname.localname) if qname.namespace == self.namespace else None
        if operation is None:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, f"data: {qname.text} is not a request of {self.namespace}")
        answer = await operation(data, deadline)
        self.check_answer(answer.data)
        return answer

    def check_answer(self, data: etree._Element) -> None:
        """Raise PROVIDER_RESPONSE_INVALID unless the answer built from the backend's reply is valid (a
        backend that sends what its protocol does not allow must not reach the caller as a valid answer)."""
        try:
            self._schema.assertValid(data)
        except etree.DocumentInvalid as exc:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"answer: {str(exc)[:500]}") from exc
