"""The registry file format (YAML): structure, enumerations and per-field rules, with errors named by path.

Keys follow gateway-rules.md §5.4 in camelCase. References between entities use natural keys: an organisation
by its BIN, an information system by its ``senderId``, a delivery point by its ``id``.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from cryptography import x509
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from registry.models import DEFAULT_MAX_CONCURRENT_CALLS

_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_LATIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_AVAILABILITY = re.compile(r"^\d{1,2}/\d{1,3}$")


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http(s) URL without spaces")
    return value


def _latin_key(value: str) -> str:
    if not _LATIN_KEY.match(value):
        raise ValueError("must be Latin letters, digits, '_', '.' or '-', starting with a letter")
    return value


def _bin(value: str) -> str:
    if not (value.isdigit() and len(value) == 12):
        raise ValueError("a BIN is 12 digits")
    return value


def _certificate(value: str) -> str:
    try:
        x509.load_pem_x509_certificate(value.encode())
    except ValueError as exc:
        raise ValueError("must be one PEM certificate") from exc
    return value


Url = Annotated[str, AfterValidator(_url)]
CertificatePem = Annotated[str, AfterValidator(_certificate)]
LatinKey = Annotated[str, AfterValidator(_latin_key)]
Bin = Annotated[str, AfterValidator(_bin)]
NonEmpty = Annotated[str, Field(min_length=1)]
MIN_PASSWORD_LENGTH = 8


class _Entry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class OrganisationEntry(_Entry):
    bin: Bin
    name: NonEmpty
    short_name: NonEmpty


class Contact(_Entry):
    full_name: str | None = None
    position: str | None = None
    phone: str | None = None
    email: str | None = None
    company_name: str | None = None
    contact_person: str | None = None
    skype: str | None = None


class OperatorEntry(_Entry):
    name: str | None = None
    short_name: str | None = None
    operations_unit: str | None = None
    head_of_operations_unit: Contact | None = None
    responsible_official: Contact | None = None
    developer_contact: Contact | None = None


SECRET_OPTIONS = frozenset({"clientSecret", "historyClientSecret", "token", "apiKey", "jwsKey"})
_SECRET_REFERENCE = re.compile(r"\$\{GATEWAY_ADAPTER_[A-Za-z0-9_]+\}")


class AdapterEntry(_Entry):
    """A back-office adapter instead of a SOAP URL; secrets in ``options`` are written ``${ENV_NAME}``."""

    name: Literal["ecs", "ecert", "payments"]  # the adapters in gateway/adapters/catalogue.py
    options: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _secrets_are_references(self) -> AdapterEntry:
        # The registry is shown to auditors, exported and audited: a secret written in it would leak everywhere.
        for key in SECRET_OPTIONS & set(self.options):
            if not _SECRET_REFERENCE.fullmatch(self.options[key]):
                raise ValueError(f"options.{key} is a secret: write it as ${{GATEWAY_ADAPTER_…}} and set that variable")
        return self


class DeliveryPointEntry(_Entry):
    id: int = Field(ge=1)
    url: Url | None = None
    adapter: AdapterEntry | None = None
    call_mode: Literal[1, 2]
    throttling_enabled: bool = False
    throttling_timeout_sec: int | None = Field(default=None, ge=1)
    throttling_request_count: int | None = Field(default=None, ge=1)
    retry_count: int = Field(default=0, ge=0)
    async_call_timeout_sec: int | None = Field(default=None, ge=1)
    max_errors: int | None = Field(default=None, ge=1)
    max_error_interval_sec: int | None = Field(default=None, ge=1)
    security_mode: Literal[0, 1, 2, 3] = 0
    enabled: bool = True
    max_concurrent_calls: int = Field(default=DEFAULT_MAX_CONCURRENT_CALLS, ge=1, le=10_000)
    signature_algorithm: Literal["RSA", "GOST"] = "RSA"
    # The CAs this point's HTTPS server (or its adapter's back office) must chain to, instead of the default trust.
    tls_trusted_certificates: list[CertificatePem] = []

    @model_validator(mode="after")
    def _throttling_complete(self) -> DeliveryPointEntry:
        if (self.url is None) == (self.adapter is None):
            raise ValueError("a delivery point has either a url or an adapter")
        # An adapter's point names the CAs of its back office's HTTPS (its URLs are the adapter's options).
        if self.tls_trusted_certificates and not any(url.startswith("https://") for url in self._urls()):
            raise ValueError("tlsTrustedCertificates are for a delivery point whose url (or adapter's baseUrl) is https://")
        if self.throttling_enabled and (self.throttling_timeout_sec is None or self.throttling_request_count is None):
            raise ValueError("throttlingEnabled needs throttlingTimeoutSec and throttlingRequestCount")
        if (self.max_errors is None) != (self.max_error_interval_sec is None):
            raise ValueError("maxErrors and maxErrorIntervalSec go together")
        return self

    def _urls(self) -> list[str]:
        """Where the point's calls go: its url, or the URLs its adapter's options name."""
        if self.url is not None:
            return [self.url]
        return [value for value in (self.adapter.options if self.adapter else {}).values() if "://" in value]


class InformationSystemEntry(_Entry):
    sender_id: NonEmpty
    organisation: Bin
    short_name: NonEmpty
    name: NonEmpty
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, repr=False)
    password_hash: str | None = Field(default=None, repr=False)
    availability_mode: str | None = Field(default=None, pattern=_AVAILABILITY.pattern)
    response_delivery_point: int | None = None
    operator: OperatorEntry | None = None
    certificates: list[CertificatePem] = []

    @model_validator(mode="after")
    def _one_credential(self) -> InformationSystemEntry:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give either password or passwordHash, not both")
        if self.password_hash is not None and not self.password_hash.startswith("$argon2"):
            raise ValueError("passwordHash must be an Argon2 hash")
        return self


class RouteEntry(_Entry):
    name: LatinKey
    delivery_point: int


class ServiceUserEntry(_Entry):
    information_system: NonEmpty
    ordinal: int = Field(default=1, ge=1)
    delivery_address: str | None = None
    publication_basis: str | None = None
    connection_basis: str | None = None
    owner_permission: str | None = None


class DocumentEntry(_Entry):
    kind: Literal["PUBLICATION_BASIS", "MESSAGE_FORMATS", "STPO"]
    reference: NonEmpty


class MessageParameterEntry(_Entry):
    message: Literal["REQUEST", "RESPONSE"]
    parameter_name: NonEmpty
    parameter_format: NonEmpty
    field: LatinKey
    mandatory: bool
    note: str | None = None


class ServiceEntry(_Entry):
    key: LatinKey
    name: NonEmpty
    description: str = ""
    owner_is: NonEmpty = Field(alias="ownerIS")
    interaction_mode: Literal["SYNC", "ASYNC", "SYNC_ASYNC"]
    wsdl_address: Url | None = None
    routing_enabled: bool = False
    default_delivery_point: int | None = None
    send_mode: Literal["PUSH", "PULL"] | None = None
    status_change_notification: bool = False
    delivery_notification: bool = False
    security_mode: Literal[0, 1, 2, 3] = 0
    revocation_fail_open: bool = False
    stage: Literal[1, 2, 3, 4] | None = None
    registry_stage: Literal["TEST", "PRODUCTION"] = "PRODUCTION"
    test_service_addresses: list[str] = []
    test_requests_and_responses: list[str] = []
    routes: list[RouteEntry] = []
    users: list[ServiceUserEntry] = []
    documents: list[DocumentEntry] = []
    message_parameters: list[MessageParameterEntry] = []

    @model_validator(mode="after")
    def _routing_consistent(self) -> ServiceEntry:
        if self.routing_enabled:
            if self.default_delivery_point is not None:
                raise ValueError("a service with routingEnabled has no defaultDeliveryPoint: its routes decide")
            if not self.routes:
                raise ValueError("routingEnabled needs at least one route")
        elif self.default_delivery_point is None:
            raise ValueError("defaultDeliveryPoint is required when routingEnabled is false")
        if self.interaction_mode != "SYNC" and self.send_mode is None:
            raise ValueError("an asynchronous service needs sendMode (PUSH or PULL)")
        return self


class RegistryFile(_Entry):
    """The whole registry file."""

    organisations: list[OrganisationEntry] = []
    delivery_points: list[DeliveryPointEntry] = []
    information_systems: list[InformationSystemEntry] = []
    services: list[ServiceEntry] = []
