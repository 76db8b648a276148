"""HTTPS providers are verified: against the system's trust store, ``GATEWAY_PROVIDER_CA_FILE``, or the CAs the
delivery point names in the registry (``tlsTrustedCertificates``), which then replace the gateway's trust for
that point alone; an adapter's back office likewise, against the CAs its point names. A certificate that does not
chain to the trust in force is refused and named."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import urllib3
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.cli import main
from gateway.errors import ErrorCode, GatewayError
from gateway.outbound.async_client import AsyncHttpClient
from gateway.serving import BackgroundAsgiServer
from registry.admin import EntryInvalid, RegistryAdmin
from tests.conftest import gateway_settings
from tests.test_async_client import ScriptedServer, call, fixed, refusal, serve  # noqa: F401 - serve is a fixture
from tests.wire import Answer, post, sync_request


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A CA certificate for 127.0.0.1 and its key, as PEM files in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return folder / f"{name}.pem", folder / f"{name}.key"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "provider")


@pytest.fixture(scope="module")
def other_tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls-other"), "other")


def https_server(serve: Callable[..., ScriptedServer], files: tuple[Path, Path], body: bytes, headers: bytes = b"") -> str:
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(*files)
    return f"https://127.0.0.1:{serve(fixed(body, headers), tls=server_side).port}"


def test_tls_is_verified_against_the_trust_given(serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path]) -> None:
    url = f"{https_server(serve, tls_files, b'<secure/>')}/p"
    # The system's trust store does not know this provider's certificate: refused, and said so.
    error = refusal(url)
    assert error.error is ErrorCode.PROVIDER_UNREACHABLE and "certificate" in error.data.lower()
    trusting = ssl.create_default_context(cafile=str(tls_files[0]))
    assert call(url, tls=trusting).body == b"<secure/>"


def test_a_points_own_trust_replaces_the_gateways_for_that_call(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], other_tls_files: tuple[Path, Path]
) -> None:
    url = f"{https_server(serve, tls_files, b'<secure/>')}/p"
    provider_ca, other_ca = tls_files[0].read_text(), other_tls_files[0].read_text()
    gateway_trust = ssl.create_default_context(cafile=str(other_tls_files[0]))  # trusts the other CA only
    assert call(url, tls=gateway_trust, trust=provider_ca).body == b"<secure/>"
    error = refusal(url, tls=ssl.create_default_context(cafile=str(tls_files[0])), trust=other_ca)
    assert error.error is ErrorCode.PROVIDER_UNREACHABLE and "certificate" in error.data.lower()


def test_a_connection_verified_under_one_trust_is_not_reused_under_another(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], other_tls_files: tuple[Path, Path]
) -> None:
    url = f"{https_server(serve, tls_files, b'<secure/>')}/p"

    async def one_client_two_points() -> GatewayError:
        client = AsyncHttpClient(connect_timeout=2.0, max_response_bytes=1024)
        try:
            answer = await client.post(url, b"<x/>", time.monotonic() + 5, tls_files[0].read_text())
            assert answer.body == b"<secure/>"
            # Same origin, a point trusting another CA: the first point's kept-alive connection must not carry it.
            with pytest.raises(GatewayError) as raised:
                await client.post(url, b"<x/>", time.monotonic() + 5, other_tls_files[0].read_text())
            return raised.value
        finally:
            await client.close()

    assert "certificate" in asyncio.run(one_client_two_points()).data.lower()


def test_the_gateway_verifies_an_https_provider_against_its_provider_ca_file(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], database_url: str, engine: Engine,
    loaded_registry: None, provider_url: str,
) -> None:
    canned = post(f"{provider_url}/provider", sync_request()).body  # the emulator's answer, served over TLS
    server = https_server(serve, tls_files, canned)
    admin = RegistryAdmin(engine)
    admin.create("delivery-points", {"id": 9401, "url": f"{server}/provider", "callMode": 1}, "test")
    admin.create("services", {"key": "TlsProviderService", "name": "A provider over HTTPS", "ownerIS": "gbdfl",
                              "interactionMode": "SYNC", "defaultDeliveryPoint": 9401,
                              "users": [{"informationSystem": "pep"}]}, "test")
    for ca_file, expected in ((None, ErrorCode.PROVIDER_UNREACHABLE.code), (tls_files[0], None)):
        assert sync_call(database_url, engine, "TlsProviderService", provider_ca_file=ca_file) == expected


def test_the_gateway_verifies_a_point_against_the_cas_the_registry_names_for_it(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], other_tls_files: tuple[Path, Path],
    database_url: str, engine: Engine, loaded_registry: None, provider_url: str,
) -> None:
    canned = post(f"{provider_url}/provider", sync_request()).body
    server = https_server(serve, tls_files, canned)
    admin = RegistryAdmin(engine)
    for point, service, ca in ((9402, "TlsOwnTrust", tls_files[0]), (9403, "TlsWrongTrust", other_tls_files[0])):
        admin.create("delivery-points", {"id": point, "url": f"{server}/provider", "callMode": 1,
                                         "tlsTrustedCertificates": [ca.read_text()]}, "test")
        admin.create("services", {"key": service, "name": "A provider over HTTPS with its own CA", "ownerIS": "gbdfl",
                                  "interactionMode": "SYNC", "defaultDeliveryPoint": point,
                                  "users": [{"informationSystem": "pep"}]}, "test")
    # The gateway's own trust knows neither CA; each point's registry entry decides, for that point alone.
    assert sync_call(database_url, engine, "TlsOwnTrust") is None
    assert sync_call(database_url, engine, "TlsWrongTrust") == ErrorCode.PROVIDER_UNREACHABLE.code
    # And a gateway trusting the provider's CA for all still refuses the point that names another.
    assert sync_call(database_url, engine, "TlsWrongTrust", provider_ca_file=tls_files[0]) == ErrorCode.PROVIDER_UNREACHABLE.code
    exported = CliRunner().invoke(main, ["registry", "export"], env={"GATEWAY_DATABASE_URL": database_url})
    assert exported.exit_code == 0 and "tlsTrustedCertificates:" in exported.output
    assert "BEGIN CERTIFICATE" in exported.output.split("id: 9402", 1)[1].split("- id:", 1)[0]


def test_the_registry_refuses_a_trust_for_a_point_that_is_not_https(engine: Engine, loaded_registry: None,
                                                                    tls_files: tuple[Path, Path]) -> None:
    admin = RegistryAdmin(engine)
    with pytest.raises(EntryInvalid, match="https"):
        admin.create("delivery-points", {"id": 9404, "url": "http://127.0.0.1:9/p", "callMode": 1,
                                         "tlsTrustedCertificates": [tls_files[0].read_text()]}, "test")
    with pytest.raises(EntryInvalid, match="https"):  # an adapter whose back office is not reached over https
        admin.create("delivery-points", {"id": 9404, "callMode": 1, "adapter": {"name": "payments", "options": {
            "baseUrl": "http://127.0.0.1:9", "token": "${GATEWAY_ADAPTER_TEST_PAYMENTS_TOKEN}"}},
            "tlsTrustedCertificates": [tls_files[0].read_text()]}, "test")
    with pytest.raises(EntryInvalid, match="PEM"):
        admin.create("delivery-points", {"id": 9404, "url": "https://127.0.0.1:9/p", "callMode": 1,
                                         "tlsTrustedCertificates": ["not a certificate"]}, "test")


def test_an_adapters_back_office_is_verified_against_the_cas_its_point_names(
    serve: Callable[..., ScriptedServer], tls_files: tuple[Path, Path], other_tls_files: tuple[Path, Path],
    database_url: str, engine: Engine, loaded_registry: None, backend_servers: dict[str, tuple[object, str]],
) -> None:
    # The payments emulator's answer to a balance request, served again by a back office over TLS.
    token = os.environ["GATEWAY_ADAPTER_TEST_PAYMENTS_TOKEN"]
    canned = urllib3.request("POST", f"{backend_servers['payments'][1]}/api/v20/balance",
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}).data
    office = https_server(serve, tls_files, canned, b"Content-Type: application/json\r\n")
    admin = RegistryAdmin(engine)
    entries: dict[int, dict[str, object]] = {}
    for point, service, ca in ((9405, "TlsBackOffice", tls_files[0]), (9406, "TlsBackOfficeWrongCa", other_tls_files[0]),
                               (9407, "TlsBackOfficeNoCa", None)):
        entry: dict[str, object] = {"id": point, "callMode": 1, "adapter": {"name": "payments", "options": {
            "baseUrl": office, "token": "${GATEWAY_ADAPTER_TEST_PAYMENTS_TOKEN}"}}}
        if ca is not None:
            entry["tlsTrustedCertificates"] = [ca.read_text()]
        entries[point] = entry
        admin.create("delivery-points", entry, "test")
        admin.create("services", {"key": service, "name": "A back office over HTTPS", "ownerIS": "paycentre",
                                  "interactionMode": "SYNC", "defaultDeliveryPoint": point,
                                  "users": [{"informationSystem": "pep"}]}, "test")
    balance = '<data><BalanceRequest xmlns="urn:gateway:adapters:payments"/></data>'
    app = create_app(gateway_settings(database_url, registry_refresh_seconds=0), engine=engine)
    try:
        with BackgroundAsgiServer(app) as gateway:
            def ask(service: str) -> Answer:
                return post(f"{gateway.url}/bip-sync/", sync_request(service, data=balance))

            assert ask("TlsBackOffice").status == 200
            # A CA that did not sign the back office's certificate, or none (the system's store decides): refused.
            for service in ("TlsBackOfficeWrongCa", "TlsBackOfficeNoCa"):
                refused = ask(service)
                assert refused.error_code() == ErrorCode.PROVIDER_UNREACHABLE.code
                assert "certificate" in refused.body.decode().lower()
            # The point's trust changed in the registry: the running gateway's next call is verified against it.
            admin.update("delivery-points", "9406", {**entries[9406], "tlsTrustedCertificates": [tls_files[0].read_text()]}, "test")
            assert ask("TlsBackOfficeWrongCa").status == 200
    finally:
        app.close()


def sync_call(
    database_url: str, engine: Engine, service: str, provider_ca_file: Path | None = None, data: str | None = None
) -> str | None:
    """Call ``service`` through a fresh gateway; None when answered, else the fault's error code."""
    app = create_app(gateway_settings(database_url, provider_ca_file=provider_ca_file, registry_refresh_seconds=0), engine=engine)
    request = sync_request(service, data=data) if data is not None else sync_request(service)
    try:
        with BackgroundAsgiServer(app) as gateway:
            answer = post(f"{gateway.url}/bip-sync/", request)
    finally:
        app.close()
    if answer.status == 200:
        return None
    assert answer.status == 500, answer.body[:400]
    return answer.error_code()
