"""Calling a synchronous provider: its ``SendMessage`` over SOAP, its answer or fault read back."""
from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

from gateway.outbound.async_client import AsyncHttpClient
from gateway.errors import ErrorCode, ErrorInfo, GatewayError
from gateway.security.encryption import open_envelope, protect
from gateway.security.keys import GatewayKeys
from gateway.security.modes import delivery_policy
from gateway.soap.envelope import build_envelope, find_fault, parse_envelope
from gateway.soap.sync_messages import SyncRequest, SyncResponse, build_send_message, read_send_message_response
from registry.snapshot import DeliveryPointView


class SoapProviderCaller:
    """Forwards sync requests to SOAP delivery points."""

    def __init__(self, client: AsyncHttpClient, keys: GatewayKeys) -> None:
        self._client = client
        self._keys = keys

    async def call(
        self,
        point: DeliveryPointView,
        request: SyncRequest,
        session_id: str,
        deadline: float,
        recipient: x509.Certificate | None = None,
    ) -> SyncResponse:
        """Send ``request`` to ``point`` (signed when its security mode says, encrypted to ``recipient`` when given); raise the
        catalogue error that describes any failure."""
        signer = self._keys.for_gost(point.wants_gost) if delivery_policy(point.security_mode).gateway_signs else None
        body = build_envelope(build_send_message(request, session_id), protect(signer, recipient))
        answer = await self._client.post(point.url, body, deadline, point.tls_trust)
        try:
            envelope = open_envelope(parse_envelope(answer.body), self._keys.decryption_keys).envelope
        except GatewayError as exc:
            if answer.status != 200:
                raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{point.url} answered HTTP {answer.status}") from exc
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, exc.data) from exc
        fault = find_fault(envelope.payload)
        if fault is not None:
            sub_error = fault.detail or ErrorInfo(
                code=fault.faultcode or "Server", message=fault.faultstring or "fault", date=datetime.now(UTC)
            )
            raise GatewayError(ErrorCode.PROVIDER_FAULT, fault.faultstring or None, sub_error=sub_error)
        if answer.status != 200:
            raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"HTTP {answer.status} without a SOAP Fault")
        return read_send_message_response(envelope.payload)
