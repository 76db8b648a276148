"""Synchronous calls to delivery points: SOAP providers, or back-office adapters in their place."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509

from gateway.adapters.envelope_data import adapter_payload, wrap_data
from gateway.adapters.pool import AdapterPool
from gateway.delivery.bulkhead import Bulkhead
from gateway.delivery.sync_provider import SoapProviderCaller
from gateway.soap.sync_messages import SyncRequest, SyncResponse
from gateway.soap.values import format_datetime
from registry.snapshot import DeliveryPointView


class DeliveryPointCaller:
    """Calls a delivery point's SOAP provider, or its adapter when the point names one, behind the process's
    bulkhead (``maxConcurrentCalls`` per point, ``GATEWAY_MAX_PROVIDER_CALLS`` in all).

    A SOAP provider and an adapter's back office alike are awaited on the loop: a call holds no thread."""

    def __init__(self, soap: SoapProviderCaller, adapters: AdapterPool, bulkhead: Bulkhead) -> None:
        self._soap = soap
        self._adapters = adapters
        self.bulkhead = bulkhead

    def admit(self, point: DeliveryPointView) -> Callable[[], None]:
        """Take one of ``point``'s slots before anything is sent, or raise ``SCE027`` at once; call the returned
        function when the call is over."""
        return self.bulkhead.admit(point)

    async def call(
        self,
        point: DeliveryPointView,
        request: SyncRequest,
        session_id: str,
        deadline: float,
        recipient: x509.Certificate | None = None,
    ) -> SyncResponse:
        """The provider's answer; an adapter's answer is final or, when its backend is still working, says so
        in its status (a synchronous caller asks again; only the asynchronous channel polls for it)."""
        if point.adapter_name is None:
            return await self._soap.call(point, request, session_id, deadline, recipient)
        adapter = self._adapters.adapter_for(point)
        payload = adapter_payload(request.data, adapter)
        # A caller that sends the same messageId again (after a timeout, say) finds what its first call created.
        key = f"{request.sender_id}:{request.message_id}"
        answer = await adapter.handle(payload, deadline, request_key=key)
        return SyncResponse(
            message_id=str(uuid.uuid4()),
            correlation_id=request.message_id,
            response_date=format_datetime(datetime.now(UTC)),
            status_code=answer.status_code,
            status_message=answer.status_message[:250],
            data=wrap_data(answer.data),
        )
