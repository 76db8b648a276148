"""Calling a synchronous provider: its ``SendMessage`` over SOAP, its answer or fault read back."""
from __future__ import annotations

from datetime import UTC, datetime

from gateway.delivery.http_client import HttpClient
from gateway.errors import ErrorCode, ErrorInfo, GatewayError
from gateway.soap.envelope import Signer, build_envelope, find_fault, parse_envelope
from gateway.soap.sync_messages import SyncRequest, SyncResponse, build_send_message, read_send_message_response
from registry.snapshot import DeliveryPointView


class SoapProviderCaller:
    """Forwards sync requests to SOAP delivery points."""

    def __init__(self, client: HttpClient, signer: Signer | None) -> None:
        self._client = client
        self._signer = signer

    def call(self, point: DeliveryPointView, request: SyncRequest, session_id: str, deadline: float) -> SyncResponse:
        """Send ``request`` to ``point``; raise the catalogue error that describes any failure."""
        signer = self._signer if point.security_mode >= 1 else None
        body = build_envelope(build_send_message(request, session_id), signer)
        answer = self._client.post(point.url, body, deadline)
        try:
            envelope = parse_envelope(answer.body)
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
