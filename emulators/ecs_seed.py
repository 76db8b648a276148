"""Deterministic seed data of the ЕЦС emulator (``emulators/ecs.py`` documents what each item is for).

Names are in Russian, as the backend's are; identifiers are chosen so each Appendix 7 code has a documented
trigger.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

SCOPE_WEB_API = "ECS.WebAPI"
SCOPE_ORGANIZATION_API = "OrganizationAPI"


@dataclass(frozen=True)
class Area:
    id: int
    name: str


@dataclass(frozen=True)
class ApiClient:
    """A registered participant: OAuth client, and for web service A an acceptor with its connection type."""

    client_id: str
    client_secret: str
    scopes: frozenset[str]
    connection_type: int | None  # None: a web service B participant only
    organization_id: int
    short_name: str
    area: Area
    terminals: frozenset[int] = frozenset()
    # service id -> the benefit category ids this acceptor serves for it
    served: dict[int, frozenset[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Holder:
    client_id: int
    client_code: str
    snils: str
    card_number: str
    card_series: str
    active: bool
    categories: frozenset[int]


@dataclass(frozen=True)
class SeedTransaction:
    id: int
    holder_id: int
    acceptor: str  # ApiClient.client_id
    service_id: int
    benefit_category_id: int
    price: Decimal
    discounted_price: Decimal
    confirmation_date: datetime


SERVICES: dict[int, str] = {
    1: "Посещение спектакля",
    2: "Экскурсия по музею",
    3: "Абонемент в бассейн",
    4: "Проход по Цифровому пропуску",
    5: "Скидка на товары",
    **{number: f"Дополнительная услуга {number}" for number in range(101, 110)},
}

CATEGORIES: dict[int, str] = {
    10: "Пенсионер",
    20: "Многодетная семья",
    30: "Инвалид I группы",
    40: "Держатель карты ЕЦС (скидка)",
}

# The Project Office's priority (spec open question 10): the first category the holder has wins.
PRIORITY: tuple[int, ...] = (30, 20, 10, 40)

YAKUTSK = Area(1, "Якутск")
MIRNY = Area(2, "Мирнинский район")

CLIENTS: dict[str, ApiClient] = {
    client.client_id: client
    for client in (
        ApiClient(
            "acceptor-1", "secret-1", frozenset({SCOPE_WEB_API, SCOPE_ORGANIZATION_API}), 1, 101,
            "Театр оперы и балета", YAKUTSK, frozenset({11, 12}),
            {1: frozenset({10, 20}), 2: frozenset({20}), 3: frozenset({30}),
             **{number: frozenset({10}) for number in range(101, 110)}},
        ),
        ApiClient(
            "acceptor-2", "secret-2", frozenset({SCOPE_WEB_API, SCOPE_ORGANIZATION_API}), 2, 102,
            "Цифровой пропуск", YAKUTSK, frozenset({21}), {1: frozenset({10, 20}), 4: frozenset({10})},
        ),
        ApiClient(
            "acceptor-3", "secret-3", frozenset({SCOPE_WEB_API, SCOPE_ORGANIZATION_API}), 3, 103,
            "Магазин Северный", MIRNY, frozenset({31}), {5: frozenset({40})},
        ),
        ApiClient("history-1", "secret-h", frozenset({SCOPE_WEB_API}), None, 201, "Портал госуслуг", YAKUTSK),
    )
}

HOLDERS: tuple[Holder, ...] = (
    # The spec's example holder: pensioner and large family; benefits at acceptor-1 and acceptor-2.
    Holder(1, "AAABBBCCC", "12345678901", "9643100000000001", "0001", True, frozenset({10, 20})),
    # Only the discount category: no benefit (01) at acceptor-1, a discount at acceptor-3.
    Holder(2, "DDDEEEFFF", "23456789012", "9643100000000002", "0002", True, frozenset({40})),
    # Inactive card (05).
    Holder(3, "INACTIVE01", "34567890123", "9643100000000003", "0003", False, frozenset({10})),
)

# Holder 1's confirmed history: 23 transactions, one a day from 2021-04-01 (the spec's example interval).
_FIRST_DAY = datetime(2021, 4, 1, 12, 31, 30, 842619, tzinfo=UTC)
SEED_TRANSACTIONS: tuple[SeedTransaction, ...] = tuple(
    SeedTransaction(
        id=1000 + day,
        holder_id=1,
        acceptor="acceptor-1" if day % 2 == 0 else "acceptor-2",
        service_id=1,
        benefit_category_id=20,
        price=Decimal("500.00"),
        discounted_price=Decimal("250.50"),
        confirmation_date=_FIRST_DAY + timedelta(days=day),
    )
    for day in range(23)
)

FIRST_NEW_TRANSACTION_ID = 5000
