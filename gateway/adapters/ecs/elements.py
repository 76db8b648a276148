"""The ecs payload (``xsd/adapters/ecs.xsd``): reading request elements into typed requests with the backend's
JSON body, and building response elements from the backend's answers.

Readers run after schema validation, so they only pick values; the connection-type field rules (spec §3.3) are
enforced here because the schema cannot know the delivery point's connection type.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from gateway.adapters.ecs.options import ConnectionType
from gateway.adapters.ecs.wire import CheckAnswer, Service, Transaction
from gateway.errors import ErrorCode, GatewayError

NS = "urn:gateway:adapters:ecs"

# Spec §3.3: which connection types may send each CheckClientBenefits field.
CHECK_FIELD_TYPES: dict[str, frozenset[ConnectionType]] = {
    "clientCode": frozenset({ConnectionType.SOCIAL_SUPPORT_TICKETING, ConnectionType.DISCOUNT_TICKETING}),
    "clientSnils": frozenset({ConnectionType.DIGITAL_PASS}),
    "cardNumber": frozenset({ConnectionType.SOCIAL_SUPPORT_TICKETING, ConnectionType.DISCOUNT_TICKETING}),
    "cardSeries": frozenset({ConnectionType.SOCIAL_SUPPORT_TICKETING, ConnectionType.DISCOUNT_TICKETING}),
    "price": frozenset({ConnectionType.DISCOUNT_TICKETING}),
}


def _q(local: str) -> str:
    return f"{{{NS}}}{local}"


def _text(parent: etree._Element, local: str) -> str | None:
    value = parent.findtext(_q(local))
    return value.strip() if value is not None else None


def _int(parent: etree._Element, local: str) -> int | None:
    value = _text(parent, local)
    return int(value) if value is not None else None


def _decimal(parent: etree._Element, local: str) -> Decimal | None:
    value = _text(parent, local)
    return Decimal(value) if value is not None else None


def _bool(parent: etree._Element, local: str) -> bool:
    return _text(parent, local) in ("true", "1")


def _date(parent: etree._Element, local: str) -> date:
    # xs:date may carry a zone suffix; the backend takes a plain calendar date.
    return date.fromisoformat(str(_text(parent, local))[:10])


@dataclass(frozen=True)
class CheckRequest:
    fields: dict[str, Any]  # the backend's JSON fields, in spec order, only those present

    @classmethod
    def read(cls, data: etree._Element) -> CheckRequest:
        fields: dict[str, Any] = {"serviceId": _int(data, "serviceId"), "organizationTerminalId": _int(data, "organizationTerminalId")}
        for name in ("clientCode", "clientSnils", "cardNumber", "cardSeries"):
            value = _text(data, name)
            if value is not None:
                fields[name] = value
        price = _decimal(data, "price")
        if price is not None:
            fields["price"] = price
        return cls(fields)

    def body(self, connection_type: ConnectionType) -> dict[str, Any]:
        """The JSON body, or MALFORMED_MESSAGE naming a field this connection type may not send."""
        for name in self.fields:
            allowed = CHECK_FIELD_TYPES.get(name)
            if allowed is not None and connection_type not in allowed:
                types = " and ".join(str(int(kind)) for kind in sorted(allowed))
                raise GatewayError(
                    ErrorCode.MALFORMED_MESSAGE,
                    f"CheckClientBenefitsRequest: {name} is available only for connection type {types}; "
                    f"this delivery point is connection type {int(connection_type)}",
                )
        return dict(self.fields)


@dataclass(frozen=True)
class ConfirmRequest:
    fields: dict[str, Any]

    @classmethod
    def read(cls, data: etree._Element) -> ConfirmRequest:
        fields: dict[str, Any] = {
            "clientId": _int(data, "clientId"),
            "benefitCategoryId": _int(data, "benefitCategoryId"),
            "transactionId": _int(data, "transactionId"),
        }
        for name in ("price", "discountedPrice"):
            amount = _decimal(data, name)
            if amount is not None:
                fields[name] = amount
        return cls(fields)

    @property
    def transaction_id(self) -> int:
        return int(self.fields["transactionId"])


@dataclass(frozen=True)
class Paging:
    page_index: int | None
    page_size: int | None
    all_pages: bool

    @classmethod
    def read(cls, data: etree._Element) -> Paging:
        return cls(_int(data, "pageIndex"), _int(data, "pageSize"), _bool(data, "allPages"))

    def fields(self, page_index: int | None, default_size: int | None) -> dict[str, int]:
        """The backend's paging fields for one page (absent ones are left to the backend's defaults)."""
        fields: dict[str, int] = {}
        if page_index is not None:
            fields["pageIndex"] = page_index
        size = self.page_size if self.page_size is not None else default_size
        if size is not None:
            fields["pageSize"] = size
        return fields


@dataclass(frozen=True)
class TransactionsRequest:
    holder: dict[str, str]
    date_from: date
    date_to: date
    paging: Paging

    @classmethod
    def read(cls, data: etree._Element) -> TransactionsRequest:
        holder = {name: value for name in ("clientCode", "cardNumber", "cardSeries") if (value := _text(data, name)) is not None}
        return cls(holder, _date(data, "dateFrom"), _date(data, "dateTo"), Paging.read(data))

    def body(self, page: dict[str, int]) -> dict[str, Any]:
        """Spec §12 item 1 / open question 14: the table's ``dateFrom``/``dateTo`` are sent, not the example's."""
        if self.date_to < self.date_from:
            raise GatewayError(ErrorCode.MALFORMED_MESSAGE, "GetTransactionsRequest: dateTo is before dateFrom")
        return {**self.holder, "dateFrom": self.date_from.isoformat(), "dateTo": self.date_to.isoformat(), **page}


def _element(local: str) -> etree._Element:
    return etree.Element(_q(local), nsmap={None: NS})


def _add(parent: etree._Element, local: str, value: object) -> etree._Element:
    child = etree.SubElement(parent, _q(local))
    child.text = value if isinstance(value, str) else _lexical(value)
    return child


def _lexical(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    return str(value)


def _named(parent: etree._Element, local: str, ident: int, name: str) -> None:
    item = etree.SubElement(parent, _q(local))
    _add(item, "id", ident)
    _add(item, "name", name)


def check_found(answer: CheckAnswer, confirmation_required: bool) -> etree._Element:
    """CheckClientBenefitsResponse for a found benefit (``benefits[0]`` is the priority one, spec open question 9)."""
    element = _element("CheckClientBenefitsResponse")
    _add(element, "outcome", "BENEFIT_FOUND")
    _add(element, "resultCode", answer.resultCode)
    if answer.resultMessage is not None:
        _add(element, "resultMessage", answer.resultMessage)
    _add(element, "transactionId", answer.transactionId)
    _add(element, "clientId", answer.clientId)
    _add(element, "confirmationRequired", confirmation_required)
    for benefit in answer.benefits:
        _named(element, "benefit", benefit.benefitCategory.id, benefit.benefitCategory.name)
    return element


def check_denied(outcome: str, code: str, message: str) -> etree._Element:
    """CheckClientBenefitsResponse for Appendix 7 code 01 (no benefit) or 05 (card inactive)."""
    element = _element("CheckClientBenefitsResponse")
    _add(element, "outcome", outcome)
    _add(element, "errorCode", code)
    _add(element, "errorMessage", message)
    return element


def confirmed(transaction_id: int) -> etree._Element:
    element = _element("ConfirmTransactionResponse")
    _add(element, "transactionId", transaction_id)
    _add(element, "confirmed", True)
    return element


def services_page(total: int, current: int, pages: int, services: list[Service]) -> etree._Element:
    element = _element("GetOrganizationServicesResponse")
    _page_info(element, total, current, pages)
    for service in services:
        _named(element, "service", service.id, service.name)
    return element


def transactions_page(total: int, current: int, pages: int, transactions: list[Transaction]) -> etree._Element:
    element = _element("GetTransactionsResponse")
    _page_info(element, total, current, pages)
    for transaction in transactions:
        item = etree.SubElement(element, _q("transaction"))
        _add(item, "id", transaction.id)
        _add(item, "confirmationDate", transaction.confirmationDate)
        _add(item, "serviceId", transaction.service.id)
        _add(item, "serviceName", transaction.service.name)
        _add(item, "organizationId", transaction.organization.id)
        _add(item, "organizationShortName", transaction.organization.shortName)
        _add(item, "areaId", transaction.area.id)
        _add(item, "areaName", transaction.area.name)
        if transaction.discountedPrice is not None:
            _add(item, "discountedPrice", transaction.discountedPrice)
    return element


def _page_info(element: etree._Element, total: int, current: int, pages: int) -> None:
    _add(element, "totalItems", total)
    _add(element, "currentPageIndex", current)
    _add(element, "pagesFetched", pages)
