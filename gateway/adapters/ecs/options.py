"""The ecs adapter's delivery-point settings, as the registry writes them (all strings); docs/adapters/ecs.md
describes each key."""
from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

# Spec §7.3 and §10.3: web service A needs both scopes, web service B only ECS.WebAPI.
SERVICE_A_SCOPES = "ECS.WebAPI OrganizationAPI"
SERVICE_B_SCOPES = "ECS.WebAPI"
TOKEN_PATH = "/connect/token"


class ConnectionType(enum.IntEnum):
    """Web service A's connection types (spec §3.2); the backend knows the client's by its client_id, the
    adapter must know it too to send only the fields that type may send (§3.3)."""

    SOCIAL_SUPPORT_TICKETING = 1
    DIGITAL_PASS = 2
    DISCOUNT_TICKETING = 3


class EcsOptions(BaseModel):
    """Validated adapter options."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    base_url: str = Field(alias="baseUrl")
    history_base_url: str | None = Field(default=None, alias="historyBaseUrl")
    token_url: str | None = Field(default=None, alias="tokenUrl")
    history_token_url: str | None = Field(default=None, alias="historyTokenUrl")
    client_id: str = Field(alias="clientId", min_length=1)
    client_secret: SecretStr = Field(alias="clientSecret", min_length=1)
    # Web service B is offered to "participants that identify holders through ESIA", who may hold other
    # credentials than the acceptor's; by default the same ones are used.
    history_client_id: str | None = Field(default=None, alias="historyClientId", min_length=1)
    history_client_secret: SecretStr | None = Field(default=None, alias="historyClientSecret", min_length=1)
    connection_type: ConnectionType = Field(alias="connectionType")
    scopes: str = Field(default=SERVICE_A_SCOPES, alias="scopes")
    history_scopes: str = Field(default=SERVICE_B_SCOPES, alias="historyScopes")
    # The regulation's 3-second answer budget (spec §5).
    timeout_seconds: float = Field(default=3.0, alias="timeoutSeconds", gt=0, le=120)
    # A token is renewed this long before it expires (at most half its lifetime, for very short-lived tokens).
    token_renew_margin_seconds: float = Field(default=30.0, alias="tokenRenewMarginSeconds", ge=0, le=3600)
    all_pages_page_size: int = Field(default=100, alias="allPagesPageSize", ge=1, le=1000)
    max_pages: int = Field(default=100, alias="maxPages", ge=1, le=10000)

    @field_validator("base_url", "history_base_url", "token_url", "history_token_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("scopes", "history_scopes")
    @classmethod
    def _scope_list(cls, value: str) -> str:
        scopes = value.replace(",", " ").split()
        if not scopes:
            raise ValueError("must name at least one scope")
        return " ".join(scopes)

    @model_validator(mode="after")
    def _scopes_cover_services(self) -> EcsOptions:
        if not set(SERVICE_A_SCOPES.split()) <= set(self.scopes.split()):
            raise ValueError(f"scopes must include {SERVICE_A_SCOPES} (web service A requires both)")
        if SERVICE_B_SCOPES not in self.history_scopes.split():
            raise ValueError(f"historyScopes must include {SERVICE_B_SCOPES}")
        if (self.history_client_id is None) != (self.history_client_secret is None):
            raise ValueError("historyClientId and historyClientSecret go together")
        return self

    @property
    def service_a_url(self) -> str:
        return self.base_url

    @property
    def service_b_url(self) -> str:
        return self.history_base_url or self.base_url

    @property
    def service_a_token_url(self) -> str:
        return self.token_url or self.base_url + TOKEN_PATH

    @property
    def service_b_token_url(self) -> str:
        return self.history_token_url or (
            self.token_url if self.history_base_url is None and self.token_url else self.service_b_url + TOKEN_PATH
        )

    def service_b_credentials(self) -> tuple[str, SecretStr]:
        """The client_id and secret used for web service B."""
        if self.history_client_id is not None and self.history_client_secret is not None:
            return self.history_client_id, self.history_client_secret
        return self.client_id, self.client_secret


def parse_options(options: Mapping[str, str]) -> EcsOptions:
    """Validate ``options``; ValueError names every problem without echoing any value (secrets among them)."""
    try:
        return EcsOptions.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}" for error in exc.errors()
        )
        raise ValueError(f"ecs adapter options: {problems}") from None
