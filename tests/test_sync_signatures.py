"""Security mode 2 on the synchronous channel: the caller's transport signature is required, verified, bound to
the sender's organisation by the BIN in its certificate, and never accepted twice."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from sqlalchemy import Engine

from gateway.emulators.sync_provider import SyncProviderEmulator
from gateway.security.wssec import sign_envelope, verify_envelope
from tests.test_sync_faults import assert_fault, assert_journalled
from tests.pki import participant
from tests.wire import SOAP_ENV, assert_wire_valid, post, sync_request

PEP_BIN = "990140000022"  # the BIN of pep's organisation in the test registry


@pytest.fixture()
def sync_url(gateway_url: str) -> str:
    return f"{gateway_url}/bip-sync/"


def signed_request(bin_: str | None = PEP_BIN, ecdsa: bool = False, days: int = 365, not_before_days: int = -1) -> bytes:
    key, cert = participant(bin_, days=days, ecdsa=ecdsa, not_before_days=not_before_days)
    root = sign_envelope(etree.fromstring(sync_request(service_id="SignedService").encode()), key, cert, ecdsa=ecdsa)
    return etree.tostring(root)


@pytest.mark.parametrize("ecdsa", [False, True], ids=["RSA-2048", "P-256"])
def test_a_signed_request_of_the_senders_organisation_goes_through(sync_url: str, provider: SyncProviderEmulator, ecdsa: bool) -> None:
    answer = post(sync_url, signed_request(ecdsa=ecdsa))
    assert answer.status == 200, answer.body[:600]
    assert len(provider.received) == 1


def test_unsigned_request_is_refused(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request(service_id="SignedService"))
    assert_fault(answer, "SCE007", "Client")
    assert_journalled(engine, answer, "SCE007", "REJECTED")
    assert provider.received == []


def test_a_changed_body_is_refused(sync_url: str, provider: SyncProviderEmulator) -> None:
    tampered = signed_request().replace(b"<messageDate>2026-11-22T12:00:00.000+05:00", b"<messageDate>2026-11-22T12:00:01.000+05:00")
    assert_fault(post(sync_url, tampered), "SCE006", "Client")
    assert provider.received == []


@pytest.mark.parametrize("bin_", ["990140000011", None], ids=["another-organisation", "individual"])
def test_a_certificate_of_another_organisation_is_refused(sync_url: str, provider: SyncProviderEmulator, bin_: str | None) -> None:
    assert_fault(post(sync_url, signed_request(bin_=bin_)), "SCE022", "Client")
    assert provider.received == []


@pytest.mark.parametrize(("days", "not_before_days"), [(-1, -10), (30, 2)], ids=["expired", "not-yet-valid"])
def test_a_certificate_out_of_its_validity_is_refused(sync_url: str, days: int, not_before_days: int) -> None:
    assert_fault(post(sync_url, signed_request(days=days, not_before_days=not_before_days)), "SCE005", "Client")


def test_a_replayed_message_is_refused(sync_url: str, provider: SyncProviderEmulator) -> None:
    message = signed_request()
    assert post(sync_url, message).status == 200
    assert_fault(post(sync_url, message), "SCE023", "Client")
    assert len(provider.received) == 1


def test_the_signature_header_is_not_passed_to_the_provider(sync_url: str, provider: SyncProviderEmulator) -> None:
    assert post(sync_url, signed_request()).status == 200
    forwarded = etree.fromstring(provider.received[0].body)
    assert forwarded.find(f"{{{SOAP_ENV}}}Header") is None


def test_the_gateway_signs_its_answer_and_what_it_forwards(
    sync_url: str, provider: SyncProviderEmulator, gateway_key: tuple[Path, Path]
) -> None:
    gateway_certificate = x509.load_pem_x509_certificate(gateway_key[1].read_bytes())
    answer = post(sync_url, sync_request(service_id="GatewaySignedService"))
    assert answer.status == 200, answer.body[:600]
    assert verify_envelope(answer.root).certificate == gateway_certificate
    assert_wire_valid(answer.payload)
    forwarded = etree.fromstring(provider.received[0].body)
    assert verify_envelope(forwarded).certificate == gateway_certificate


def test_mode_0_is_neither_verified_nor_signed(sync_url: str, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request())
    assert answer.root.find(f"{{{SOAP_ENV}}}Header") is None
    assert etree.fromstring(provider.received[0].body).find(f"{{{SOAP_ENV}}}Header") is None


def test_a_gateway_without_a_signing_key_refuses_signed_modes(
    database_url: str, engine: Engine, loaded_registry: None, provider: SyncProviderEmulator
) -> None:
    from gateway.app import create_app
    from gateway.emulators.http import BackgroundServer
    from tests.conftest import gateway_settings

    app = create_app(gateway_settings(database_url), engine=engine)
    with BackgroundServer(app) as server:
        answer = post(f"{server.url}/bip-sync/", sync_request(service_id="GatewaySignedService"))
    app.close()
    assert_fault(answer, "SCE909", "Server")
    assert "signing key" in answer.fault_info().findtext("errorData")
    assert provider.received == []
