"""The backends' JSON: writing requests with exact decimals, reading answers into validated models.

Numbers with a fraction are read as :class:`~decimal.Decimal` and written from Decimal digit for digit, so an
amount never passes through a binary float.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.adapters.ecs.codes import BackendError
from gateway.errors import ErrorCode, GatewayError

Model = TypeVar("Model", bound=BaseModel)


def dumps(value: Any) -> bytes:
    """Serialise ``value`` (dicts, lists, str, int, bool, None, Decimal) as compact UTF-8 JSON."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a JSON number must be finite")
        return format(value, "f")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(key), ensure_ascii=False)}:{_encode(item)}" for key, item in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def loads(body: bytes) -> Any:
    """Parse JSON with fractional numbers as Decimal; ValueError when it is not JSON."""
    return json.loads(body.decode("utf-8"), parse_float=Decimal)


def read_answer(model: type[Model], body: bytes, what: str) -> Model:
    """A 2xx answer's body as ``model``, or PROVIDER_RESPONSE_INVALID naming the first problem."""
    try:
        return model.model_validate(loads(body))
    except (ValueError, ValidationError) as exc:
        raise GatewayError(ErrorCode.PROVIDER_RESPONSE_INVALID, f"{what}: {_first_problem(exc)}") from None


def read_error(status: int, body: bytes) -> BackendError | None:
    """The error JSON of a non-2xx answer (``message`` required, ``errorCode`` optional), or None when the
    body is not that structure (a proxy's or an overloaded server's page)."""
    try:
        document = loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("message"), str):
        return None
    code = document.get("errorCode")
    if isinstance(code, bool) or not isinstance(code, (int, type(None))):
        code = int(code) if isinstance(code, str) and code.isdigit() else None
    return BackendError(status=status, message=document["message"], error_code=code)


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
    return f"not JSON ({str(exc)[:200]})"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TokenAnswer(_Lenient):
    """RFC 6749 §5.1 access token response (spec §7.3)."""

    access_token: str = Field(min_length=1)
    expires_in: int = Field(gt=0)
    token_type: str
    scope: str | None = None


class BenefitCategory(_Lenient):
    id: int
    name: str


class ClientBenefit(_Lenient):
    benefitCategory: BenefitCategory


class CheckAnswer(_Lenient):
    """CheckClientBenefits response (spec §7.4); success means 200 with at least one benefit (open question 3)."""

    resultCode: int
    resultMessage: str | None = None
    transactionId: int
    clientId: int
    benefits: list[ClientBenefit] = Field(min_length=1)


class Service(_Lenient):
    id: int
    name: str


class OrganizationService(_Lenient):
    service: Service


class ServicesPage(_Lenient):
    """GetOrganizationServices response (spec §7.6)."""

    pageItems: list[OrganizationService]
    totalItems: int = Field(ge=0)
    currentPageIndex: int = Field(ge=0)


class Organization(_Lenient):
    id: int
    shortName: str


class Area(_Lenient):
    """A district; the spec's table says ``name`` and its example ``shortName`` (§12 item 2): either is read."""

    id: int
    name: str

    @model_validator(mode="before")
    @classmethod
    def _short_name_fallback(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value and "shortName" in value:
            return {**value, "name": value["shortName"]}
        return value


class Transaction(_Lenient):
    id: int
    confirmationDate: datetime
    service: Service
    organization: Organization
    area: Area
    discountedPrice: Decimal | None = None


class TransactionsPage(_Lenient):
    """GetTransactions response (spec §10.4)."""

    pageItems: list[Transaction]
    totalItems: int = Field(ge=0)
    currentPageIndex: int = Field(ge=0)
