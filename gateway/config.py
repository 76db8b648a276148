"""The one place for settings: environment variables prefixed ``GATEWAY_``."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Gateway settings; every field can be set as ``GATEWAY_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/gateway.db",
        description="SQLAlchemy URL: a SQLite file for one machine, PostgreSQL for several processes or machines.",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = Field(default=None, description="base URL clients use, if not the Host they sent")
    workers: int = Field(default=2, ge=1, description="server worker processes, each with one event loop")
    threads: int = Field(
        default=16, ge=1,
        description="threads per process for blocking work (the asynchronous channel's database work, "
        "health reports, the delivery worker's claims and outcomes); a provider call, an adapter's back-office call or a "
        "delivery holds none",
    )
    sync_timeout_seconds: float = Field(default=60.0, gt=0, description="whole sync exchange budget")
    provider_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="largest accepted request body; README.md says why 4 MiB"
    )
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request body that sends no byte for this long is refused and its connection closed"
    )
    max_bytes_in_flight: int = Field(
        default=32 * 1024 * 1024, gt=0,
        description="request-body bytes a worker process holds at once; a request beyond it gets 503 at once",
    )
    max_provider_calls: int = Field(
        default=1000, ge=1,
        description="synchronous provider calls one worker process has in flight at once; beyond them SCE028 at once",
    )
    max_provider_response_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    password_cache_seconds: float = Field(
        default=60.0, ge=0, description="how long a verified sender password is trusted without the KDF"
    )
    registry_refresh_seconds: float = Field(
        default=2.0, ge=0, description="how often a process checks whether the registry changed"
    )
    signing_key: Path | None = Field(default=None, description="the gateway's signing key: PKCS#12 (.p12) or PEM")
    signing_cert: Path | None = Field(default=None, description="the certificate of a PEM signing key")
    signing_key_password: SecretStr | None = Field(default=None, description="passphrase of the signing key")
    previous_signing_key: Path | None = Field(
        default=None, description="during a key rotation, the key being retired: still decrypts, no longer signs"
    )
    previous_signing_cert: Path | None = Field(default=None, description="the certificate of a PEM previous key")
    previous_signing_key_password: SecretStr | None = Field(default=None, description="passphrase of the previous key")
    gost_signing_key: Path | None = Field(
        default=None, description="the gateway's GOST signing key: NCA's PKCS#12 (.p12) or an unencrypted PEM PKCS#8"
    )
    gost_signing_cert: Path | None = Field(default=None, description="the certificate of a PEM GOST signing key")
    gost_signing_key_password: SecretStr | None = Field(default=None, description="passphrase of the GOST key")
    trusted_ca_file: Path | None = Field(
        default=None,
        description="trusted RSA/ECDSA CA certificates (PEM bundle or DER); without either CA file, chains and "
        "revocation are not checked",
    )
    trusted_gost_ca_file: Path | None = Field(
        default=None, description="trusted GOST CA certificates (PEM bundle or DER): NCA publishes separate roots"
    )
    crl_sources: str = Field(default="", description="comma-separated CRL files or http(s) URLs of those CAs")
    crl_refresh_seconds: float = Field(default=3600.0, gt=0, description="how often CRLs are fetched again")
    revocation_policy: Literal["crl", "ocsp", "both"] = Field(
        default="crl", description="how a signer's revocation is checked: its issuer's CRL, OCSP, or both"
    )
    ocsp_responder_url: str | None = Field(
        default=None, description="an OCSP responder to ask instead of the one a certificate's AIA names"
    )
    ocsp_timeout_seconds: float = Field(default=5.0, gt=0, description="how long one OCSP request may take")
    ocsp_max_age_seconds: float = Field(
        default=300.0, gt=0, description="how long an OCSP answer is reused (never past its nextUpdate)"
    )
    replay_window_seconds: float = Field(
        default=900.0, gt=0, description="a signed message seen again within this window is refused as a replay"
    )
    get_messages_default_amount: int = Field(default=10, ge=1, description="getMessages amount when 0 or absent")
    delivery_in_serve: bool = Field(default=True, description="gateway serve also runs a delivery worker process")
    delivery_concurrency: int = Field(
        default=200, ge=1, description="deliveries in flight per worker process (each a task on its event loop, not a thread)"
    )
    delivery_poll_seconds: float = Field(default=0.2, gt=0, description="how often a worker looks for due deliveries")
    delivery_lease_margin_seconds: float = Field(
        default=30.0, gt=0, description="a claimed delivery's lease: the longest asyncCallTimeout plus this"
    )
    retry_base_seconds: float = Field(default=5.0, gt=0, description="first retry delay; doubles per attempt")
    retry_max_seconds: float = Field(default=300.0, gt=0, description="longest retry delay")
    breaker_probe_seconds: float = Field(
        default=0.0, ge=0, description="half-open probe of a switched-off point after this long (0: administrator only)"
    )
    provider_ca_file: Path | None = Field(
        default=None,
        description="CA certificates (PEM) that providers' and PUSH recipients' HTTPS certificates are verified "
        "against, unless their delivery point names its own (tlsTrustedCertificates); default: the system's trust store",
    )
    admin_host: str = Field(default="127.0.0.1", description="where the admin API listens (loopback unless configured)")
    admin_port: int = Field(default=8081, description="the admin API's port")
    admin_in_serve: bool = Field(default=True, description="gateway serve also runs the admin API")
    seal_interval_seconds: float = Field(default=10.0, gt=0, description="how often journal rows are sealed by a checkpoint")
    journal_retention_days: int = Field(default=1825, ge=1, description="sealed journal rows older than this may be archived")
    archive_dir: Path = Field(default=Path("var/archive"), description="where archived journal files are written")
    late_delivery_seconds: float = Field(
        default=900.0, gt=0, description="an asynchronous message still undelivered this long opens an incident"
    )
    metrics_dir: Path | None = Field(
        default=None, description="shared folder for Prometheus metrics of several processes (gunicorn workers)"
    )
    contracts_dir: Path = Field(default=REPO_ROOT, description="folder holding wsdl/ and xsd/")
    log_level: str = "INFO"
