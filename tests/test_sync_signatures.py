"""Security mode 2 on the synchronous channel: the caller's transport signature is required, verified, bound to
the sender's organisation by the BIN in its certificate, and never accepted twice."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from sqlalchemy import Engine

from emulators.sync_provider import SyncProviderEmulator
from gateway.security.wssec import DS, sign_envelope, verify_envelope
from tests.test_sync_faults import assert_fault, assert_journalled
from gateway.security.pki import issue_participant
from tests.conftest import NationalCa
from tests.pki import participant
from gateway.soap.namespaces import WSSE
from tests.wire import SOAP_ENV, assert_wire_valid, post, sync_request

PEP_BIN = "990140000022"  # the BIN of pep's organisation in the test registry


def signed_request(
    ca: NationalCa, bin_: str | None = PEP_BIN, ecdsa: bool = False, days: int = 365, not_before_days: int = -1
) -> bytes:
    holder = issue_participant(ca.ca, bin_, ecdsa=ecdsa, valid_from_days=not_before_days, valid_days=days - not_before_days)
    return sign_with(holder.key_pem, holder.cert_pem, ecdsa)


def sign_with(key_pem: bytes, cert_pem: bytes, ecdsa: bool = False) -> bytes:
    root = sign_envelope(etree.fromstring(sync_request(service_id="SignedService").encode()), key_pem, cert_pem)
    return etree.tostring(root)


@pytest.mark.parametrize("ecdsa", [False, True], ids=["RSA-2048", "P-256"])
def test_a_signed_request_of_the_senders_organisation_goes_through(
    sync_url: str, provider: SyncProviderEmulator, ecdsa: bool, test_pki: NationalCa
) -> None:
    answer = post(sync_url, signed_request(test_pki, ecdsa=ecdsa))
    assert answer.status == 200, answer.body[:600]
    assert len(provider.received) == 1


def test_unsigned_request_is_refused(sync_url: str, engine: Engine, provider: SyncProviderEmulator) -> None:
    answer = post(sync_url, sync_request(service_id="SignedService"))
    assert_fault(answer, "SCE007", "Client")
    assert_journalled(engine, answer, "SCE007", "REJECTED")
    assert provider.received == []


def test_a_changed_body_is_refused(sync_url: str, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    tampered = signed_request(test_pki).replace(b"<messageDate>2026-11-22T12:00:00.000+05:00", b"<messageDate>2026-11-22T12:00:01.000+05:00")
    assert_fault(post(sync_url, tampered), "SCE006", "Client")
    assert provider.received == []


@pytest.mark.parametrize("bin_", ["990140000011", None], ids=["another-organisation", "individual"])
def test_a_certificate_of_another_organisation_is_refused(
    sync_url: str, provider: SyncProviderEmulator, bin_: str | None, test_pki: NationalCa
) -> None:
    assert_fault(post(sync_url, signed_request(test_pki, bin_=bin_)), "SCE022", "Client")
    assert provider.received == []


@pytest.mark.parametrize(("days", "not_before_days"), [(-1, -10), (30, 2)], ids=["expired", "not-yet-valid"])
def test_a_certificate_out_of_its_validity_is_refused(sync_url: str, days: int, not_before_days: int, test_pki: NationalCa) -> None:
    assert_fault(post(sync_url, signed_request(test_pki, days=days, not_before_days=not_before_days)), "SCE005", "Client")


def test_a_replayed_message_is_refused(sync_url: str, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    message = signed_request(test_pki)
    assert post(sync_url, message).status == 200
    assert_fault(post(sync_url, message), "SCE023", "Client")
    assert len(provider.received) == 1


def test_the_signature_header_is_not_passed_to_the_provider(sync_url: str, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    assert post(sync_url, signed_request(test_pki)).status == 200
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
    from gateway.serving import BackgroundAsgiServer
    from tests.conftest import gateway_settings

    app = create_app(gateway_settings(database_url), engine=engine)
    with BackgroundAsgiServer(app) as server:
        answer = post(f"{server.url}/bip-sync/", sync_request(service_id="GatewaySignedService"))
    app.close()
    assert_fault(answer, "SCE909", "Server")
    assert "signing key" in answer.fault_info().findtext("errorData")
    assert provider.received == []


def test_a_certificate_from_an_untrusted_issuer_is_refused(sync_url: str, provider: SyncProviderEmulator) -> None:
    key, cert = participant(PEP_BIN)  # self-issued, right BIN, valid dates: only the chain is wrong
    assert_fault(post(sync_url, sign_with(key, cert)), "SCE024", "Client")
    assert provider.received == []


def test_a_revoked_certificate_is_refused_once_the_crl_says_so(sync_url: str, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    import time

    holder = issue_participant(test_pki.ca, PEP_BIN)
    assert post(sync_url, sign_with(holder.key_pem, holder.cert_pem)).status == 200
    test_pki.revoke(holder.certificate.serial_number)
    time.sleep(0.3)  # the gateway fetches the CRL again every 0.2 s in the tests
    refused = post(sync_url, sign_with(holder.key_pem, holder.cert_pem))
    assert_fault(refused, "SCE005", "Client")
    assert "revoked" in refused.fault_info().findtext("errorData")


def layout_b(signed: bytes, certificate: x509.Certificate, issuer_text: str | None = None) -> bytes:
    """Turn a Layout A envelope into WSS4J 2's Layout B: the certificate named by issuer and serial instead of
    carried (KeyInfo is outside what is signed, so the signature stays valid)."""
    root = etree.fromstring(signed)
    reference = root.find(f".//{{{WSSE}}}SecurityTokenReference")
    for child in list(reference):
        reference.remove(child)
    data = etree.SubElement(reference, f"{{{DS}}}X509Data")
    issuer_serial = etree.SubElement(data, f"{{{DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = issuer_text or certificate.issuer.rfc4514_string()
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = str(certificate.serial_number)
    return etree.tostring(root)


def register(engine: Engine, sender_id: str, cert_pem: bytes) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from registry.loader import bump_version
    from registry.models import Certificate, InformationSystem

    with Session(engine) as session, session.begin():
        system = session.scalars(select(InformationSystem).where(InformationSystem.sender_id == sender_id)).one()
        session.add(Certificate(information_system_id=system.id, pem=cert_pem.decode()))
        bump_version(session)


def test_layout_b_finds_the_registered_certificate(sync_url: str, engine: Engine, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    holder = issue_participant(test_pki.ca, PEP_BIN)
    message = layout_b(sign_with(holder.key_pem, holder.cert_pem), holder.certificate)
    assert_fault(post(sync_url, message), "SCE006", "Client")  # not registered yet
    register(engine, "pep", holder.cert_pem)
    second = layout_b(sign_with(holder.key_pem, holder.cert_pem), holder.certificate)
    answer = post(sync_url, second)
    assert answer.status == 200, answer.body[:600]


def test_issuer_names_match_by_value_not_by_string() -> None:
    from gateway.security.wssec import parse_distinguished_name

    wss4j = parse_distinguished_name("CN=ҰКО 3.0 (RSA TEST),2.5.4.5=#130f49494e393331303032343531333235,C=KZ")
    other = parse_distinguished_name("CN=ҰКО 3.0 (RSA TEST), SERIALNUMBER=IIN931002451325, C=KZ")
    assert wss4j == other


def test_the_async_channel_applies_the_same_rules(gateway_url: str, test_pki: NationalCa, gateway_key: tuple[Path, Path]) -> None:
    from tests.test_async_faults import assert_async_fault
    from tests.wire import async_send

    url = f"{gateway_url}/bip-async/"
    assert_async_fault(post(url, async_send("AsyncSigned")), "sendMessage", "SCE007")
    holder = issue_participant(test_pki.ca, PEP_BIN)
    signed = etree.tostring(sign_envelope(etree.fromstring(async_send("AsyncSigned").encode()), holder.key_pem, holder.cert_pem))
    answer = post(url, signed)
    assert answer.status == 200, answer.body[:600]
    assert verify_envelope(answer.root).certificate == x509.load_pem_x509_certificate(gateway_key[1].read_bytes())
    assert_wire_valid(answer.payload)
    assert_async_fault(post(url, signed), "sendMessage", "SCE023")
