"""Deterministic seed data of the payment processing centre emulator (``emulators/payments.py``).

The catalogue, the contracts and the invoice are the spec's own examples (protocol v20, §8.1, §8.4.7, §8.4.8);
the rest is added so that every result code can be reached. The module docstring of ``payments.py`` lists
which account or amount gives which code.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.adapters.payments import codes

DEMO_TOKEN = "demo-agent-token"
PENDING_TOKEN = "pending-agent-token"
REVOKED_TOKEN = "revoked-agent-token"
SEED_TOKENS = {DEMO_TOKEN: "confirmed", PENDING_TOKEN: "pending", REVOKED_TOKEN: "revoked"}

AGENT_ID = 4
AGENT_NAME = "Наименоване Агента"  # sic, the spec's example keeps the source's typo
SEED_BALANCE = Decimal("509455.9000")
SEED_OVERDRAFT = Decimal("0.0000")
CURRENCY = "KZT"
# amountFrom − amountTo above this is an "unacceptable additional commission" (255; spec open question 10).
MAX_COMMISSION = Decimal("500.00")
FIRST_TRANSACTION_ID = 900_000_000_000_000_001  # 18 digits: beyond 2^53, so float parsing would show


@dataclass(frozen=True)
class AccountScript:
    """What the provider says about one account: a final refusal code, or a scripted pending payment, or data
    to show (displays, contracts, invoices)."""

    refusal: int | None = None
    pending_code: int | None = None  # pay answers this (non-final) for a while, then ``pending_outcome``
    pending_outcome: int = codes.SUCCESS
    displays: Mapping[str, str] = field(default_factory=dict)
    contracts: tuple[Mapping[str, Any], ...] = ()
    invoices: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ServiceRule:
    """A service as the catalogue shows it, plus how the emulated provider behaves."""

    catalogue: Mapping[str, Any]
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    refusal: int | None = None  # the whole service refuses with this code (155: acceptance prohibited)
    any_account: bool = False  # every account matching the regexp exists (mobile top-ups)
    accounts: Mapping[str, AccountScript] = field(default_factory=dict)
    required_extras: tuple[str, ...] = ()
    rate: Decimal | None = None  # international provider: conversion shown by check
    provider_currency: str | None = None

    @property
    def service_id(self) -> str:
        return str(self.catalogue["serviceId"])

    @property
    def account_regexp(self) -> str:
        for item in self.catalogue.get("inputs", ()):
            if item.get("name") == "account":
                return str(item["regexp"])
        return "^.+$"

    @property
    def scheme(self) -> str:
        return {1: "complex", 2: "withChoice"}.get(int(self.catalogue["type"]), "simple")


def _account_input(title: str, regexp: str) -> dict[str, Any]:
    return {"name": "account", "required": True, "title": title, "regexp": regexp}


_PETROV_CONTRACTS = tuple(
    {
        "name": "Петров",
        "contractId": f"00000058{7 + n}",
        "contractNumber": f"{n + 1}/00-Ф",
        "contractSum": f"{n + 1}000.00",
        "contractDate": f"2020021{5 + n}000000",
    }
    for n in range(3)
)


def _utility(sub_id: str, name: str, pay_sum: str, tariff: str, meter: bool, prev: str, si: str,
             min_sum: str = "0.0", max_sum: str = "0.0") -> dict[str, Any]:
    return {
        "subServiceId": sub_id,
        "subServiceName": name,
        "data": {
            "paySum": Decimal(pay_sum), "tariff": Decimal(tariff), "minSum": Decimal(min_sum),
            "maxSum": Decimal(max_sum), "debtInfo": "0.00", "isMeter": meter, "prevCount": prev,
            "lastCount": "0.00", "si": si, "comment": "",
        },
    }


_ALSEKO_INVOICE = {
    "invoiceId": "2020020003535444",
    "formedDate": "20200201000000",
    "expireDate": "20200229000000",
    "clientName": "Иванов Иван Иванович",
    "clientAddress": "микрорайон 2, дом 42, кв.4",
    "services": [
        _utility("36", "Электроэнергия", "359.8", "0.0", True, "4870.00", "тг/м2"),
        _utility("13", "ТО газа ", "80.0", "0.0", False, "0.00", "тг/плита"),
        _utility("2", "Отопление", "925.2", "500.0", False, "0.00", "тг/м2"),
    ],
}

_LIMITED_INVOICE = {
    "invoiceId": "2020020003535445",
    "formedDate": "20200201000000",
    "expireDate": "20200229000000",
    "clientName": "Петров Пётр",
    "clientAddress": "микрорайон 3, дом 1, кв.1",
    "services": [
        _utility("36", "Электроэнергия", "120.0", "0.0", True, "100.00", "тг/м2", "50.0", "500.0"),
        _utility("2", "Отопление", "300.0", "500.0", False, "0.00", "тг/м2"),
    ],
}


def seed_services() -> dict[str, ServiceRule]:
    """The emulated catalogue by serviceId (a fresh copy for each emulator)."""
    rules = [
        ServiceRule(
            catalogue={
                "serviceId": "P1011", "type": 0, "name": "Билайн Казахстан", "group": "Сотовая связь",
                "fixedPayment": True, "country": "КАЗАХСТАН",
                "inputs": [_account_input("Номер телефона", "^\\d{10}$")],
            },
            min_amount=Decimal("100.00"),
            max_amount=Decimal("100000.00"),
            any_account=True,
            accounts={
                "7770000005": AccountScript(refusal=codes.ACCOUNT_NOT_FOUND),
                "7770000007": AccountScript(refusal=codes.PROHIBITED_BY_PROVIDER),
                "7770000008": AccountScript(refusal=codes.PROHIBITED_TECHNICAL),
                "7770000300": AccountScript(refusal=codes.OTHER_ERROR),
                "7770000153": AccountScript(pending_code=codes.SECURITY_REVIEW),
                "7770000001": AccountScript(pending_code=codes.IN_PROGRESS, pending_outcome=codes.OTHER_ERROR),
            },
        ),
        ServiceRule(
            catalogue={
                "serviceId": "P1012", "type": 0, "name": "Herbalife", "group": "Товары по каталогам",
                "fixedPayment": True, "country": "КАЗАХСТАН",
                "inputs": [
                    _account_input("Номер независимого партнера", "^\\d{10}$"),
                    {"name": "ev_account1", "required": True, "title": "Номер заказа", "regexp": "^\\d{10}$"},
                ],
                "displays": [
                    {"name": "fio", "required": True, "title": "ФИО", "regexp": "^.+$"},
                    {"name": "info", "required": True, "title": "Сумма к оплате", "regexp": "^.+$"},
                    {"name": "fixedAmount", "required": True, "title": "", "regexp": "^\\d{1,9}\\.\\d{2}$"},
                ],
            },
            accounts={
                "1234567890": AccountScript(
                    displays={"fio": "Test fio", "info": "Сумма к оплате 20000.00 тенге", "fixedAmount": "20000.00"}
                ),
            },
            required_extras=("account1",),
        ),
        ServiceRule(
            catalogue={
                "serviceId": "P0005", "type": 1, "name": "Алсеко", "group": "ЖКХ", "fixedPayment": False,
                "country": "КАЗАХСТАН", "inputs": [_account_input("Номер лицевого счета", "^\\d{10}$")],
            },
            accounts={
                "1000000001": AccountScript(invoices=(_ALSEKO_INVOICE,)),
                "1000000002": AccountScript(invoices=(_LIMITED_INVOICE,)),
            },
        ),
        ServiceRule(
            catalogue={
                "serviceId": "P0006", "type": 2, "name": "XXX банк", "group": "Другие услуги", "fixedPayment": False,
                "country": "КАЗАХСТАН", "inputs": [_account_input("Введите ИИН", "^\\d{12}$")],
            },
            accounts={"931002451325": AccountScript(contracts=_PETROV_CONTRACTS)},
        ),
        ServiceRule(
            catalogue={
                "serviceId": "P2001", "type": 0, "name": "Global Mobile (USD)", "group": "Сотовая связь",
                "fixedPayment": False, "country": "США", "inputs": [_account_input("Phone number", "^\\d{10,12}$")],
            },
            min_amount=Decimal("100.00"),
            any_account=True,
            rate=Decimal("0.0020833333"),
            provider_currency="USD",
        ),
        ServiceRule(
            catalogue={
                "serviceId": "P0155", "type": 0, "name": "Closed provider", "group": "Другие услуги",
                "fixedPayment": False, "country": "КАЗАХСТАН", "inputs": [_account_input("Account", "^\\d{6}$")],
            },
            refusal=codes.SERVICE_PROHIBITED,
            any_account=True,
        ),
    ]
    return {rule.service_id: rule for rule in rules}


# Mobile number portability: exact (ported) numbers first, then the operator's prefixes.
MNP_PORTED = {"7012345678": "P1011"}
MNP_PREFIXES = {"777": "P1011", "705": "P1011", "771": "P1011"}
