"""The ЕЦС benefit-card backend (spec backend-ecs.md): the token server and web services A and B on one host.

Endpoints: ``POST /connect/token`` (client credentials, scopes checked), ``POST /api/CheckClientBenefits``,
``/api/ConfirmTransaction``, ``/api/GetOrganizationServices`` (scopes ``ECS.WebAPI`` + ``OrganizationAPI``)
and ``/api/GetTransactions`` (scope ``ECS.WebAPI``). Errors are the spec's JSON (``message``, ``errorCode``,
``errors``); HTTP statuses follow the spec's suggestion: 400 validation and business codes, 401 token, 403
scope or connection type, 503 for code 06 and when "down".

Seed data (``emulators/ecs_seed.py``):

- clients (``client_id`` / ``client_secret``, connection type): ``acceptor-1``/``secret-1`` type 1, terminals 11
  and 12, services 1, 2, 3 and 101-109 (12 services, for paging); ``acceptor-2``/``secret-2`` type 2 (SNILS),
  terminal 21, services 1 and 4; ``acceptor-3``/``secret-3`` type 3 (discounts, price in the check), terminal
  31, service 5; ``history-1``/``secret-h``, scope ``ECS.WebAPI`` only (web service B).
- holders: 1 ``AAABBBCCC`` / SNILS ``12345678901`` / card ``9643100000000001`` series ``0001``, active,
  categories 10 and 20; 2 ``DDDEEEFFF`` / ``23456789012`` / ``9643100000000002``/``0002``, active, category 40
  only; 3 ``INACTIVE01`` / ``34567890123`` / ``9643100000000003``/``0003``, inactive.
- holder 1 has 23 confirmed transactions, ids 1000-1022, one a day from 2021-04-01T12:31:30.842619Z; new
  transactions are numbered from 5000.

Every error code is reachable: 01 holder 2 at acceptor-1 service 1; 02 an unknown identifier (e.g.
``ZZZ``); 03 and 04 only through the ``force_error_code`` switch; 05 holder 3; 06 the
``processing_centre_down`` switch; 07 an unknown ``organizationTerminalId`` (e.g. 999); 08 a ``serviceId``
the acceptor does not offer (e.g. 5 at acceptor-1). ``force_error_code`` makes any code (also the spec's
example ``100``) the answer of every web service A and B method.

Switches (attributes of :class:`EcsSwitches`, ``emulator.set_switches(**values)``, or over HTTP
``POST /_emulator/switches`` with a JSON object and ``GET /_emulator/switches``): ``delay_seconds``, ``down``
(HTTP 503 text for every request, token endpoint included), ``processing_centre_down``, ``force_error_code``,
``token_ttl_seconds`` (``expires_in`` of new tokens, which really expire then), ``pending_ttl_seconds``
(unconfirmed transactions are deleted after it), ``type3_auto_confirm``, ``area_field`` (``name``,
``shortName`` as in the spec's example, or ``both``), ``reject_tokens`` (401 to every token, as a backend
whose token keys were rotated). ``POST /_emulator/revoke-tokens`` (or
:meth:`EcsEmulator.revoke_tokens`) makes every issued token invalid. ``GET /_emulator/stats`` gives the
counters (``token_requests`` …) that :attr:`EcsEmulator.token_requests` also holds.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from emulators.ecs_seed import (
    CATEGORIES,
    CLIENTS,
    FIRST_NEW_TRANSACTION_ID,
    HOLDERS,
    PRIORITY,
    SCOPE_ORGANIZATION_API,
    SCOPE_WEB_API,
    SEED_TRANSACTIONS,
    SERVICES,
    ApiClient,
    Holder,
)
from emulators.http import reply
from gateway.adapters.ecs.wire import dumps

JSON = "application/json; charset=utf-8"
SERVICE_A = frozenset({SCOPE_WEB_API, SCOPE_ORGANIZATION_API})
SERVICE_B = frozenset({SCOPE_WEB_API})
LIMITS = {"clientCode": 15, "cardNumber": 19, "cardSeries": 8}
CONNECTION_FIELDS = {"clientCode": {1, 3}, "clientSnils": {2}, "cardNumber": {1, 3}, "cardSeries": {1, 3}, "price": {3}}


@dataclass
class EcsSwitches:
    """Runtime behaviour; tests and ``POST /_emulator/switches`` change it between calls."""

    delay_seconds: float = 0.0
    down: bool = False
    processing_centre_down: bool = False
    force_error_code: int | None = None
    token_ttl_seconds: int = 3600
    pending_ttl_seconds: float = 1800.0
    type3_auto_confirm: bool = True
    area_field: str = "name"
    reject_tokens: bool = False


@dataclass
class EmulatedTransaction:
    id: int
    holder_id: int
    acceptor: str
    service_id: int
    benefit_category_id: int
    created: float  # time.monotonic()
    state: str = "PENDING"  # PENDING, CONFIRMED, DELETED
    price: Decimal | None = None
    discounted_price: Decimal | None = None
    confirmation_date: datetime | None = None
    confirmations: int = 0


@dataclass(frozen=True)
class ReceivedCall:
    """One /api/* request as the emulator saw it (body parsed with Decimal numbers, raw bytes kept)."""

    path: str
    client_id: str | None
    body: Any
    raw: bytes


@dataclass(frozen=True)
class _Issued:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


class _Refusal(Exception):
    def __init__(self, status: int, message: str, code: int | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.document: dict[str, Any] = {"message": message}
        if code is not None:
            self.document["errorCode"] = code
        if errors:
            self.document["errors"] = errors


@dataclass
class EcsEmulator:
    """The WSGI backend; ``calls`` holds every /api/* request, ``token_requests`` counts token grants asked."""

    switches: EcsSwitches = field(default_factory=EcsSwitches)
    calls: list[ReceivedCall] = field(default_factory=list)
    token_requests: int = 0
    transactions: dict[int, EmulatedTransaction] = field(default_factory=dict)
    _tokens: dict[str, _Issued] = field(default_factory=dict)
    _next_id: int = FIRST_NEW_TRANSACTION_ID
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for seed in SEED_TRANSACTIONS:
            self.transactions[seed.id] = EmulatedTransaction(
                seed.id, seed.holder_id, seed.acceptor, seed.service_id, seed.benefit_category_id, 0.0,
                "CONFIRMED", seed.price, seed.discounted_price, seed.confirmation_date, 1,
            )

    # Steering

    def set_switches(self, **values: Any) -> None:
        """Change switches by name; ValueError for an unknown name or a value of the wrong type."""
        known = {item.name: item for item in fields(EcsSwitches)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown switch {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(EcsSwitches(), name)
            if name == "force_error_code":
                valid = value is None or (isinstance(value, int) and not isinstance(value, bool))
            elif name == "area_field":
                valid = value in ("name", "shortName", "both")
            elif isinstance(current, bool):
                valid = isinstance(value, bool)
            else:
                valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            if not valid:
                raise ValueError(f"bad value for switch {name!r}")
        for name, value in values.items():
            setattr(self.switches, name, int(value) if name == "token_ttl_seconds" else value)

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (as a key rotation or revocation at the bank would)."""
        with self._lock:
            self._tokens.clear()

    def calls_to(self, method: str) -> list[ReceivedCall]:
        """The /api/<method> requests received, in order."""
        with self._lock:
            return [call for call in self.calls if call.path == f"/api/{method}"]

    # WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.startswith("/_emulator/"):
            return self._steer(path, method, body, start_response)
        switches = self.switches
        if switches.down:
            return reply(start_response, 503, b"Service Unavailable\n", "text/plain")
        if switches.delay_seconds:
            time.sleep(switches.delay_seconds)
        if method != "POST":
            return reply(start_response, 405, dumps({"message": "Only POST is supported"}), JSON)
        if path == "/connect/token":
            return self._token(environ, body, start_response)
        handler = self._handlers().get(path)
        if handler is None:
            return reply(start_response, 404, dumps({"message": f"No method {path}"}), JSON)
        needed, function = handler
        client: ApiClient | None = None
        document: Any = None
        try:
            client = self._authorise(environ, needed)
            document = _parse_json(body)
            if switches.processing_centre_down:
                raise _Refusal(503, "Отсутствует связь с процессинговым центром", 6)
            if switches.force_error_code is not None:
                code = switches.force_error_code
                raise _Refusal(503 if code == 6 else 400, "Ошибка", code)
            status, answer = function(client, document)
        except _Refusal as refusal:
            return reply(start_response, refusal.status, dumps(refusal.document), JSON)
        finally:
            with self._lock:
                self.calls.append(ReceivedCall(path, client.client_id if client else None, document, body))
        return reply(start_response, status, dumps(answer) if answer is not None else b"", JSON)

    def _handlers(self) -> dict[str, tuple[frozenset[str], Callable[[ApiClient, Any], tuple[int, Any]]]]:
        return {
            "/api/CheckClientBenefits": (SERVICE_A, self._check),
            "/api/ConfirmTransaction": (SERVICE_A, self._confirm),
            "/api/GetOrganizationServices": (SERVICE_A, self._services),
            "/api/GetTransactions": (SERVICE_B, self._history),
        }

    def _steer(self, path: str, method: str, body: bytes, start_response: Any) -> list[bytes]:
        if path == "/_emulator/switches" and method == "POST":
            try:
                values = json.loads(body or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("a JSON object is expected")
                self.set_switches(**values)
            except ValueError as exc:
                return reply(start_response, 400, dumps({"message": str(exc)}), JSON)
        elif path == "/_emulator/revoke-tokens" and method == "POST":
            self.revoke_tokens()
        elif path == "/_emulator/stats" and method == "GET":
            with self._lock:
                stats = {"token_requests": self.token_requests, "api_requests": len(self.calls), "tokens": len(self._tokens)}
            return reply(start_response, 200, dumps(stats), JSON)
        elif path != "/_emulator/switches" or method != "GET":
            return reply(start_response, 404, dumps({"message": "unknown emulator control"}), JSON)
        return reply(start_response, 200, json.dumps(asdict(self.switches)).encode(), JSON)

    # Token server (spec §7.3; errors per RFC 6749 §5.2, open question 21)

    def _token(self, environ: dict[str, Any], body: bytes, start_response: Any) -> list[bytes]:
        with self._lock:
            self.token_requests += 1
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error(start_response, "invalid_request", "form encoding expected")
        # The spec's own example has "grant_type= client_credentials": values are trimmed.
        form = {name: values[0].strip() for name, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client = CLIENTS.get(form.get("client_id", ""))
        if client is None or not secrets.compare_digest(client.client_secret, form.get("client_secret", "")):
            return _oauth_error(start_response, "invalid_client", "unknown client or wrong secret")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(start_response, "unsupported_grant_type", "only client_credentials")
        requested = frozenset(form.get("scope", "").split())
        if not requested or not requested <= client.scopes:
            return _oauth_error(start_response, "invalid_scope", "scope missing or not granted to this client")
        token = secrets.token_urlsafe(24)
        ttl = self.switches.token_ttl_seconds
        with self._lock:
            self._tokens[token] = _Issued(client.client_id, requested, time.monotonic() + ttl)
        answer = {"access_token": token, "expires_in": ttl, "token_type": "Bearer", "scope": " ".join(sorted(requested))}
        return reply(start_response, 200, dumps(answer), JSON)

    def _authorise(self, environ: dict[str, Any], needed: frozenset[str]) -> ApiClient:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        with self._lock:
            issued = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if issued is None or time.monotonic() >= issued.expires_at or self.switches.reject_tokens:
            raise _Refusal(401, "Unauthorized")
        if not needed <= issued.scopes:
            raise _Refusal(403, f"The token lacks scope {' '.join(sorted(needed - issued.scopes))}")
        return CLIENTS[issued.client_id]

    # Web service A

    def _check(self, client: ApiClient, document: Any) -> tuple[int, Any]:
        body = _object(document)
        errors = [f"{name} is required and must be an integer" for name in ("serviceId", "organizationTerminalId") if not _is_int(body.get(name))]
        errors += _identifier_errors(body, snils_allowed=True)
        if "price" in body and not _is_amount(body["price"]):
            errors.append("price must be a non-negative number")
        if errors:
            raise _Refusal(400, "Validation failed", errors=errors)
        if client.connection_type is None:
            raise _Refusal(403, "This client is not a web service A participant")
        for name, types in CONNECTION_FIELDS.items():
            if name in body and client.connection_type not in types:
                raise _Refusal(403, f"{name} is not available for connection type {client.connection_type}")
        if body["organizationTerminalId"] not in client.terminals:
            raise _Refusal(400, "ID участника отсутствует в системе", 7)
        served = client.served.get(body["serviceId"])
        if served is None:
            raise _Refusal(400, "Код типа услуги не найден", 8)
        holder = _find_holder(body, snils_allowed=True)
        if holder is None:
            raise _Refusal(400, "Ошибка ввода кода держателя КЖЯ - клиент не найден", 2)
        if not holder.active:
            raise _Refusal(400, "Карта ЕЦС имеет неактивный статус", 5)
        category = next((item for item in PRIORITY if item in holder.categories and item in served), None)
        if category is None:
            raise _Refusal(400, "У владельца карты ЕЦС отсутствует льгота у данного Акцептанта", 1)
        with self._lock:
            transaction = EmulatedTransaction(self._next_id, holder.client_id, client.client_id, body["serviceId"], category, time.monotonic())
            self._next_id += 1
            if client.connection_type == 3 and self.switches.type3_auto_confirm:
                transaction.state, transaction.price = "CONFIRMED", body.get("price")
                transaction.confirmation_date = datetime.now(UTC)
            self.transactions[transaction.id] = transaction
        answer = {
            "resultCode": 1,
            "transactionId": transaction.id,
            "clientId": holder.client_id,
            "benefits": [{"benefitCategory": {"id": category, "name": CATEGORIES[category]}}],
        }
        return 200, answer

    def _confirm(self, client: ApiClient, document: Any) -> tuple[int, Any]:
        body = _object(document)
        if client.connection_type is None or (client.connection_type == 3 and self.switches.type3_auto_confirm):
            raise _Refusal(403, "ConfirmTransaction is available only for connection types 1 and 2")
        errors = [f"{name} is required and must be an integer" for name in ("clientId", "benefitCategoryId", "transactionId") if not _is_int(body.get(name))]
        errors += [f"{name} must be a non-negative number" for name in ("price", "discountedPrice") if name in body and not _is_amount(body[name])]
        if errors:
            raise _Refusal(400, "Validation failed", errors=errors)
        with self._lock:
            transaction = self.transactions.get(body["transactionId"])
            if transaction is None or transaction.acceptor != client.client_id:
                raise _Refusal(400, "Transaction not found")
            if transaction.holder_id != body["clientId"] or transaction.benefit_category_id != body["benefitCategoryId"]:
                raise _Refusal(400, "clientId or benefitCategoryId does not match the transaction")
            if transaction.state == "PENDING" and time.monotonic() - transaction.created > self.switches.pending_ttl_seconds:
                transaction.state = "DELETED"
            if transaction.state == "DELETED":
                raise _Refusal(400, "The transaction was deleted (not confirmed in time)")
            transaction.confirmations += 1
            if transaction.state == "PENDING":
                transaction.state = "CONFIRMED"
                transaction.price, transaction.discounted_price = body.get("price"), body.get("discountedPrice")
                transaction.confirmation_date = datetime.now(UTC)
        return 200, None

    def _services(self, client: ApiClient, document: Any) -> tuple[int, Any]:
        body = _object(document)
        items = [{"service": {"id": number, "name": SERVICES[number]}} for number in sorted(client.served)]
        return 200, _page(body, items)

    # Web service B

    def _history(self, client: ApiClient, document: Any) -> tuple[int, Any]:
        body = _object(document)
        errors = _identifier_errors(body, snils_allowed=False)
        # The spec's example names the dates creationDateFrom/creationDateTo (§12 item 1): both are accepted.
        first = _date(body.get("dateFrom", body.get("creationDateFrom")))
        last = _date(body.get("dateTo", body.get("creationDateTo")))
        if first is None or last is None:
            errors.append("dateFrom and dateTo are required dates (YYYY-MM-DD)")
        if errors:
            raise _Refusal(400, "Validation failed", errors=errors)
        holder = _find_holder(body, snils_allowed=False)
        if holder is None:
            raise _Refusal(400, "Ошибка ввода кода держателя КЖЯ - клиент не найден", 2)
        with self._lock:
            chosen = sorted(
                (
                    item for item in self.transactions.values()
                    if item.holder_id == holder.client_id and item.state == "CONFIRMED" and item.confirmation_date
                    and first <= item.confirmation_date.astimezone(UTC).date() <= last  # type: ignore[operator]
                ),
                key=lambda item: (item.confirmation_date, item.id),
            )
            items = [self._history_item(item) for item in chosen]
        return 200, _page(body, items)

    def _history_item(self, transaction: EmulatedTransaction) -> dict[str, Any]:
        acceptor = CLIENTS[transaction.acceptor]
        area: dict[str, Any] = {"id": acceptor.area.id}
        if self.switches.area_field in ("name", "both"):
            area["name"] = acceptor.area.name
        if self.switches.area_field in ("shortName", "both"):
            area["shortName"] = acceptor.area.name
        item: dict[str, Any] = {
            "id": transaction.id,
            "confirmationDate": transaction.confirmation_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # type: ignore[union-attr]
            "service": {"id": transaction.service_id, "name": SERVICES[transaction.service_id]},
            "organization": {"id": acceptor.organization_id, "shortName": acceptor.short_name},
            "area": area,
        }
        if transaction.discounted_price is not None:
            item["discountedPrice"] = transaction.discounted_price
        return item


def make_emulator(**options: Any) -> EcsEmulator:
    """An emulator with the seed data; ``options`` are initial switches (see :class:`EcsSwitches`)."""
    emulator = EcsEmulator()
    emulator.set_switches(**options)
    return emulator


def _oauth_error(start_response: Any, error: str, description: str) -> list[bytes]:
    return reply(start_response, 400, dumps({"error": error, "error_description": description}), JSON)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal) if body else {}
    except ValueError:
        raise _Refusal(400, "The body is not JSON") from None


def _object(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _Refusal(400, "A JSON object is expected")
    return document


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_amount(value: Any) -> bool:
    return (isinstance(value, Decimal) or _is_int(value)) and value >= 0


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _identifier_errors(body: dict[str, Any], snils_allowed: bool) -> list[str]:
    errors = []
    for name, limit in LIMITS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value.strip()) <= limit):
            errors.append(f"{name} must be a string of 1 to {limit} characters")
    snils = body.get("clientSnils")
    if snils is not None and (not snils_allowed or not isinstance(snils, str) or not (len(snils) == 11 and snils.isdigit())):
        errors.append("clientSnils must be 11 digits" if snils_allowed else "clientSnils is not accepted here")
    if ("cardNumber" in body) != ("cardSeries" in body):
        errors.append("cardNumber and cardSeries go together")
    names = ("clientCode", "clientSnils", "cardNumber") if snils_allowed else ("clientCode", "cardNumber")
    if not any(body.get(name) is not None for name in names):
        errors.append(f"one of {', '.join(names)} (with cardSeries) is required")
    return errors


def _find_holder(body: dict[str, Any], snils_allowed: bool) -> Holder | None:
    code = body.get("clientCode")
    snils = body.get("clientSnils") if snils_allowed else None
    card = (body.get("cardNumber"), body.get("cardSeries"))
    for holder in HOLDERS:
        if code is not None and holder.client_code == code.strip():
            return holder
        if snils is not None and holder.snils == snils:
            return holder
        if card[0] is not None and (holder.card_number, holder.card_series) == (card[0].strip(), str(card[1]).strip()):
            return holder
    return None


def _page(body: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    """Zero-based paging (spec §7.6, open question 17): no pageSize means every item on page 0."""
    index, size = body.get("pageIndex", 0), body.get("pageSize")
    if not _is_int(index) or index < 0 or (size is not None and (not _is_int(size) or size < 1)):
        raise _Refusal(400, "Validation failed", errors=["pageIndex must be >= 0 and pageSize >= 1"])
    chosen = items if size is None else items[index * size:(index + 1) * size]
    return {"pageItems": chosen if size is not None or index == 0 else [], "totalItems": len(items), "currentPageIndex": index}
