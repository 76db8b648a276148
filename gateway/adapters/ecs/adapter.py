"""The ecs adapter: ЕЦС web service A (CheckClientBenefits, ConfirmTransaction, GetOrganizationServices) and
web service B (GetTransactions) behind one delivery point.

Every operation is final (no PendingWork). Each ``handle`` call, token included, finishes before
min(deadline, start + timeoutSeconds): the regulation counts an answer later than 3 s as a failure (spec §5).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from lxml import etree

from gateway.adapters.base import AdapterAnswer
from gateway.adapters.ecs import elements
from gateway.adapters.ecs.codes import APPENDIX_7, CARD_INACTIVE, CHECK_DENIALS, BackendError
from gateway.adapters.ecs.options import ConnectionType, EcsOptions
from gateway.adapters.ecs.token import TokenEndpoint, TokenSource
from gateway.adapters.ecs.wire import CheckAnswer, ServicesPage, TransactionsPage, dumps, read_answer, read_error
from gateway.adapters.payload import Operation, PayloadSchema
from gateway.outbound.async_client import HttpAnswer, HttpRequests
from gateway.errors import ErrorCode, GatewayError

Page = TypeVar("Page", ServicesPage, TransactionsPage)


@dataclass(frozen=True)
class _Backend:
    """One web service: its base URL and the token source for its scopes."""

    base_url: str
    tokens: TokenSource


@dataclass(frozen=True)
class _Walked:
    total: int
    current: int
    pages: int
    items: list[Any]


class EcsAdapter:
    """:class:`~gateway.adapters.base.BackendAdapter` for the ЕЦС benefit-card web services."""

    name = "ecs"
    namespace = elements.NS

    def __init__(self, options: EcsOptions, http: HttpRequests) -> None:
        self._options = options
        self._http = http
        self._schema = PayloadSchema.of("ecs")
        self._service_a = _Backend(
            options.service_a_url,
            TokenSource(
                TokenEndpoint(
                    options.service_a_token_url,
                    options.client_id,
                    options.client_secret,
                    options.scopes,
                    options.token_renew_margin_seconds,
                ),
                http,
            ),
        )
        history_id, history_secret = options.service_b_credentials()
        self._service_b = _Backend(
            options.service_b_url,
            TokenSource(
                TokenEndpoint(
                    options.service_b_token_url,
                    history_id,
                    history_secret,
                    options.history_scopes,
                    options.token_renew_margin_seconds,
                ),
                http,
            ),
        )
        self._operations: dict[str, Operation] = {
            "CheckClientBenefitsRequest": self._check_client_benefits,
            "ConfirmTransactionRequest": self._confirm_transaction,
            "GetOrganizationServicesRequest": self._get_organization_services,
            "GetTransactionsRequest": self._get_transactions,
        }

    async def handle(self, data: etree._Element, deadline: float, request_key: str | None = None) -> AdapterAnswer:
        """Carry out the operation ``data`` names within min(deadline, now + timeoutSeconds). ``request_key``
        is not used: ЕЦС has no idempotency key and no look-up by a reference of ours (docs/adapters.md,
        "Repeats", says why a repeat is harmless for connection types 1 and 2, and what it costs for 3)."""
        budget = min(deadline, time.monotonic() + self._options.timeout_seconds)
        return await self._schema.serve(self._operations, data, budget)

    async def poll(self, reference: Mapping[str, Any], attempt: int, deadline: float) -> AdapterAnswer:
        """ЕЦС answers are all final; the gateway never has anything to poll for."""
        raise GatewayError(ErrorCode.INTERNAL_ERROR, "ecs has no pending work")

    def close(self) -> None:
        """Forget the cached tokens; the HTTP client belongs to the gateway, which closes it."""
        self._service_a.tokens.clear()
        self._service_b.tokens.clear()

    # Operations

    async def _check_client_benefits(self, data: etree._Element, budget: float) -> AdapterAnswer:
        connection_type = self._options.connection_type
        body = elements.CheckRequest.read(data).body(connection_type)
        result = await self._exchange(self._service_a, "/api/CheckClientBenefits", body, budget)
        if isinstance(result, BackendError):
            if result.error_code in CHECK_DENIALS:
                meaning = APPENDIX_7[result.error_code].meaning
                outcome = "CARD_INACTIVE" if result.error_code == CARD_INACTIVE else "NO_BENEFIT"
                message = f"{meaning}: {result.message}" if result.message else meaning
                return AdapterAnswer(elements.check_denied(outcome, result.sub_code(), message), status_message=meaning)
            raise result.to_gateway_error("CheckClientBenefits")
        answer = read_answer(CheckAnswer, result.body, "CheckClientBenefits")
        # Connection type 3 has no ConfirmTransaction: its check, with the price, is the recorded use (open question 6).
        confirmation_required = connection_type != ConnectionType.DISCOUNT_TICKETING
        return AdapterAnswer(elements.check_found(answer, confirmation_required))

    async def _confirm_transaction(self, data: etree._Element, budget: float) -> AdapterAnswer:
        if self._options.connection_type == ConnectionType.DISCOUNT_TICKETING:
            raise GatewayError(
                ErrorCode.UNSUPPORTED_OPERATION,
                "ConfirmTransaction is available only for connection types 1 and 2; this delivery point is type 3",
            )
        request = elements.ConfirmRequest.read(data)
        await self._post(self._service_a, "/api/ConfirmTransaction", request.fields, budget, "ConfirmTransaction")
        # The answer is "HTTP 200 OK" with no body defined (spec §7.5): whatever body came is not looked at.
        return AdapterAnswer(elements.confirmed(request.transaction_id))

    async def _get_organization_services(self, data: etree._Element, budget: float) -> AdapterAnswer:
        paging = elements.Paging.read(data)
        walked = await self._walk(
            self._service_a, "/api/GetOrganizationServices", lambda page: page, paging, ServicesPage, budget
        )
        services = [item.service for item in walked.items]
        return AdapterAnswer(elements.services_page(walked.total, walked.current, walked.pages, services))

    async def _get_transactions(self, data: etree._Element, budget: float) -> AdapterAnswer:
        request = elements.TransactionsRequest.read(data)
        walked = await self._walk(self._service_b, "/api/GetTransactions", request.body, request.paging, TransactionsPage, budget)
        return AdapterAnswer(elements.transactions_page(walked.total, walked.current, walked.pages, walked.items))

    # Paging

    async def _walk(
        self,
        backend: _Backend,
        path: str,
        body_for: Callable[[dict[str, int]], dict[str, Any]],
        paging: elements.Paging,
        model: type[Page],
        budget: float,
    ) -> _Walked:
        """One page as asked, or with ``allPages`` every page from ``pageIndex`` on, up to ``maxPages``
        (the answer's totalItems and currentPageIndex then tell the caller where to go on)."""
        operation = path.rsplit("/", 1)[-1]
        if not paging.all_pages:
            page = await self._page(backend, path, body_for(paging.fields(paging.page_index, None)), model, budget, operation)
            return _Walked(page.totalItems, page.currentPageIndex, 1, list(page.pageItems))
        size = paging.page_size or self._options.all_pages_page_size
        first = paging.page_index or 0
        items: list[Any] = []
        for index in range(first, first + self._options.max_pages):
            page = await self._page(backend, path, body_for(paging.fields(index, size)), model, budget, operation)
            if page.currentPageIndex != index:
                raise GatewayError(
                    ErrorCode.PROVIDER_RESPONSE_INVALID,
                    f"{operation}: asked for page {index}, the backend answered page {page.currentPageIndex}",
                )
            items.extend(page.pageItems)
            if len(page.pageItems) < size or (index + 1) * size >= page.totalItems:
                break
        return _Walked(page.totalItems, index, index - first + 1, items)

    async def _page(
        self, backend: _Backend, path: str, body: dict[str, Any], model: type[Page], budget: float, operation: str
    ) -> Page:
        answer = await self._post(backend, path, body, budget, operation)
        return read_answer(model, answer.body, operation)

    # Transport

    async def _post(self, backend: _Backend, path: str, body: dict[str, Any], budget: float, operation: str) -> HttpAnswer:
        result = await self._exchange(backend, path, body, budget)
        if isinstance(result, BackendError):
            raise result.to_gateway_error(operation)
        return result

    async def _exchange(self, backend: _Backend, path: str, body: dict[str, Any], budget: float) -> HttpAnswer | BackendError:
        """POST ``body``; a 2xx answer, or the backend's error. A token the backend rejects (401) is renewed
        once and the call made once more."""
        payload = dumps(body)
        for attempt in (1, 2):
            token = await backend.tokens.get(budget)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
            }
            answer = await self._http.request("POST", backend.base_url + path, payload, headers, budget)
            if answer.status == 401 and attempt == 1:
                backend.tokens.invalidate(token)
                continue
            break
        if 200 <= answer.status < 300:
            return answer
        error = read_error(answer.status, answer.body)
        if error is not None:
            return error
        if answer.status >= 500:
            raise GatewayError(ErrorCode.PROVIDER_UNREACHABLE, f"{path}: HTTP {answer.status} without an error body")
        return BackendError(status=answer.status, message=None, error_code=None)
