"""Security mode 3: the Body encrypted with XML Encryption to the gateway's certificate, decrypted on entry, and
what the gateway sends on encrypted to the recipient's registered certificate."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from sqlalchemy import Engine

from emulators.sync_provider import SyncProviderEmulator
from gateway.errors import GatewayError
from gateway.security.encryption import XENC, encrypt_envelope, open_envelope
from gateway.security.pki import issue_participant
from gateway.security.wssec import DS, sign_envelope, verify_envelope
from gateway.soap.envelope import parse_envelope
from gateway.soap.namespaces import WSSE
from tests.conftest import NationalCa
from tests.test_sync_faults import assert_fault, assert_journalled
from tests.test_sync_signatures import PEP_BIN, register
from tests.wire import SOAP_ENV, assert_wire_valid, post, sync_request

PROVIDER_BIN = "990140000011"
PERSONAL_DATA = '<data><person xmlns="urn:test:person"><iin>931002451325</iin></person></data>'


def gateway_certificate(gateway_key: tuple[Path, Path]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(gateway_key[1].read_bytes())


def gateway_private_key(gateway_key: tuple[Path, Path]):  # noqa: ANN201
    return serialization.load_pem_private_key(gateway_key[0].read_bytes(), None)


def signed_then_encrypted(key_pem: bytes, cert_pem: bytes, recipient: x509.Certificate, service_id: str = "EncryptedService") -> bytes:
    """What WSS4J's ``Signature Encrypt`` actions make: the Body signed, then its content encrypted."""
    root = sign_envelope(etree.fromstring(sync_request(service_id=service_id, data=PERSONAL_DATA).encode()), key_pem, cert_pem)
    encrypt_envelope(root, recipient)
    return etree.tostring(root)


def body_of(message: bytes) -> etree._Element:
    return etree.fromstring(message).find(f"{{{SOAP_ENV}}}Body")


def test_encrypted_body_hides_the_content_and_decrypts_with_the_gateway_key(gateway_key: tuple[Path, Path], test_pki: NationalCa) -> None:
    holder = issue_participant(test_pki.ca, PEP_BIN)
    message = signed_then_encrypted(holder.key_pem, holder.cert_pem, gateway_certificate(gateway_key))
    assert b"931002451325" not in message and body_of(message)[0].tag == f"{{{XENC}}}EncryptedData"
    opened = open_envelope(parse_envelope(message), [gateway_private_key(gateway_key)])
    assert opened.encrypted and opened.envelope.payload.tag.endswith("SendMessage")
    assert verify_envelope(opened.signed_root).certificate == holder.certificate


def test_encrypt_then_sign_is_verified_over_the_ciphertext(gateway_key: tuple[Path, Path], test_pki: NationalCa) -> None:
    holder = issue_participant(test_pki.ca, PEP_BIN)
    root = etree.fromstring(sync_request(service_id="EncryptedService").encode())
    encrypt_envelope(root, gateway_certificate(gateway_key))
    sign_envelope(root, holder.key_pem, holder.cert_pem)
    # WSS4J prepends each action's header: the signature, applied last, comes first in one Security header.
    securities = root.findall(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security")
    signature = securities[1].find(f"{{{DS}}}Signature")
    securities[0].insert(0, signature)
    securities[1].getparent().remove(securities[1])
    opened = open_envelope(parse_envelope(etree.tostring(root)), [gateway_private_key(gateway_key)])
    assert opened.envelope.payload.tag.endswith("SendMessage")
    assert verify_envelope(opened.signed_root).certificate == holder.certificate
    with pytest.raises(GatewayError):
        verify_envelope(opened.envelope.root)  # the decrypted Body is not what was signed


def test_xmlsec_native_encryption_with_the_key_inside_encrypted_data(gateway_key: tuple[Path, Path]) -> None:
    """Plain XML Encryption as xmlsec makes it: the EncryptedKey inside the EncryptedData's KeyInfo."""
    root = etree.fromstring(sync_request().encode())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    template = xmlsec.template.encrypted_data_create(root, xmlsec.constants.TransformAes128Cbc, type=xmlsec.constants.TypeEncContent, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="dsig")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(gateway_key[1]), xmlsec.constants.KeyDataFormatCertPem))
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, 128, xmlsec.constants.KeyDataTypeSession)
    context.encrypt_xml(template, body)
    opened = open_envelope(parse_envelope(etree.tostring(root)), [gateway_private_key(gateway_key)])
    assert opened.encrypted and opened.envelope.payload.findtext(".//serviceId") == "GbdflPersonInfo"


def test_rsa_1_5_key_transport_is_refused(gateway_key: tuple[Path, Path], test_pki: NationalCa) -> None:
    holder = issue_participant(test_pki.ca, PEP_BIN)
    message = signed_then_encrypted(holder.key_pem, holder.cert_pem, gateway_certificate(gateway_key))
    message = message.replace(b"xmlenc#rsa-oaep-mgf1p", b"xmlenc#rsa-1_5")
    with pytest.raises(GatewayError) as refused:
        open_envelope(parse_envelope(message), [gateway_private_key(gateway_key)])
    assert refused.value.error.code == "SCE026"


@pytest.fixture()
def crypto_provider(engine: Engine, provider: SyncProviderEmulator, test_pki: NationalCa) -> object:
    """The provider of EncryptedService with its RSA certificate registered and its key in the emulator."""
    holder = issue_participant(test_pki.ca, PROVIDER_BIN, common_name="crypto provider")
    register(engine, "cryptoprov", holder.cert_pem)
    provider.decryption_keys = (serialization.load_pem_private_key(holder.key_pem, None),)
    yield holder
    provider.decryption_keys = ()


def test_mode_3_end_to_end(
    sync_url: str, provider: SyncProviderEmulator, crypto_provider, gateway_key: tuple[Path, Path], test_pki: NationalCa  # noqa: ANN001
) -> None:
    caller = issue_participant(test_pki.ca, PEP_BIN)
    answer = post(sync_url, signed_then_encrypted(caller.key_pem, caller.cert_pem, gateway_certificate(gateway_key)))
    assert answer.status == 200, answer.body[:800]
    # The answer is encrypted to the caller's certificate and signed by the gateway.
    assert answer.root.find(f"{{{SOAP_ENV}}}Body")[0].tag == f"{{{XENC}}}EncryptedData"
    opened = open_envelope(parse_envelope(answer.body), [serialization.load_pem_private_key(caller.key_pem, None)])
    assert verify_envelope(opened.signed_root).certificate == gateway_certificate(gateway_key)
    assert_wire_valid(opened.envelope.payload)
    assert b"931002451325" in etree.tostring(opened.envelope.payload), "the provider's echo of the request data"
    # What reached the provider was encrypted to the provider's registered certificate and signed by the gateway.
    forwarded = provider.received[0].body
    assert b"931002451325" not in forwarded
    at_provider = open_envelope(parse_envelope(forwarded), [serialization.load_pem_private_key(crypto_provider.key_pem, None)])
    assert verify_envelope(at_provider.signed_root).certificate == gateway_certificate(gateway_key)
    assert b"931002451325" in etree.tostring(at_provider.envelope.payload)


def test_mode_3_refuses_a_signed_but_unencrypted_message(sync_url: str, engine: Engine, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    caller = issue_participant(test_pki.ca, PEP_BIN)
    plain = etree.tostring(sign_envelope(etree.fromstring(sync_request(service_id="EncryptedService").encode()), caller.key_pem, caller.cert_pem))
    answer = post(sync_url, plain)
    assert_fault(answer, "SCE025", "Client")
    assert_journalled(engine, answer, "SCE025", "REJECTED")
    assert provider.received == []


def test_a_message_encrypted_to_someone_else_is_refused(sync_url: str, provider: SyncProviderEmulator, test_pki: NationalCa) -> None:
    caller = issue_participant(test_pki.ca, PEP_BIN)
    stranger = issue_participant(test_pki.ca, PROVIDER_BIN, common_name="not the gateway")
    answer = post(sync_url, signed_then_encrypted(caller.key_pem, caller.cert_pem, stranger.certificate))
    assert_fault(answer, "SCE026", "Client")
    assert provider.received == []


def test_a_previous_key_still_decrypts_during_a_rotation(database_url: str, engine: Engine, loaded_registry: None, gateway_key: tuple[Path, Path], tmp_path: Path, test_pki: NationalCa, crypto_provider) -> None:  # noqa: ANN001,E501
    """The new key signs; messages senders still encrypt to the old certificate are read with the old key."""
    from gateway.app import create_app
    from gateway.serving import BackgroundAsgiServer
    from tests.conftest import gateway_settings

    new = issue_participant(test_pki.ca, "990140000099", common_name="gateway 2027")
    (tmp_path / "new.key").write_bytes(new.key_pem)
    (tmp_path / "new.pem").write_bytes(new.cert_pem)
    settings = gateway_settings(
        database_url, signing_key=tmp_path / "new.key", signing_cert=tmp_path / "new.pem",
        previous_signing_key=gateway_key[0], previous_signing_cert=gateway_key[1],
    )
    app = create_app(settings, engine=engine)
    caller = issue_participant(test_pki.ca, PEP_BIN)
    try:
        with BackgroundAsgiServer(app) as server:
            to_old = post(f"{server.url}/bip-sync/", signed_then_encrypted(caller.key_pem, caller.cert_pem, gateway_certificate(gateway_key)))
            to_new = post(f"{server.url}/bip-sync/", signed_then_encrypted(caller.key_pem, caller.cert_pem, new.certificate))
    finally:
        app.close()
    caller_key = serialization.load_pem_private_key(caller.key_pem, None)
    for answer in (to_old, to_new):
        assert answer.status == 200, answer.body[:600]
        opened = open_envelope(parse_envelope(answer.body), [caller_key])
        assert verify_envelope(copy.deepcopy(opened.signed_root)).certificate == new.certificate


def test_mode_3_on_the_async_channel(gateway_url: str, gateway_key: tuple[Path, Path], test_pki: NationalCa) -> None:
    from tests.test_async_faults import assert_async_fault
    from tests.wire import async_send

    url = f"{gateway_url}/bip-async/"
    caller = issue_participant(test_pki.ca, PEP_BIN)
    signed = sign_envelope(etree.fromstring(async_send("AsyncEncrypted").encode()), caller.key_pem, caller.cert_pem)
    assert_async_fault(post(url, etree.tostring(signed)), "sendMessage", "SCE025")
    signed = sign_envelope(etree.fromstring(async_send("AsyncEncrypted").encode()), caller.key_pem, caller.cert_pem)
    encrypt_envelope(signed, gateway_certificate(gateway_key))
    answer = post(url, etree.tostring(signed))
    assert answer.status == 200, answer.body[:600]
    opened = open_envelope(parse_envelope(answer.body), [serialization.load_pem_private_key(caller.key_pem, None)])
    assert opened.encrypted and verify_envelope(opened.signed_root).certificate == gateway_certificate(gateway_key)
    assert_wire_valid(opened.envelope.payload)


def test_of_two_certificates_valid_equally_long_the_one_registered_last_is_encrypted_to(
    monkeypatch: pytest.MonkeyPatch, test_pki: NationalCa
) -> None:
    """A provider that replaces its certificate the same second it got the first one (validity is kept to the
    second) is encrypted to with the replacement, not with the key it gave up."""
    from datetime import UTC, datetime

    from gateway.security import pki
    from registry.snapshot import SenderView

    issued_at = datetime.now(UTC).replace(microsecond=0)

    class SameSecond(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # noqa: ARG003
            return issued_at

    monkeypatch.setattr(pki, "datetime", SameSecond)
    first, second = issue_participant(test_pki.ca, PROVIDER_BIN), issue_participant(test_pki.ca, PROVIDER_BIN)
    assert first.certificate.not_valid_after_utc == second.certificate.not_valid_after_utc
    for registered in ((first, second), (second, first)):
        sender = SenderView("cryptoprov", None, PROVIDER_BIN, None, tuple(holder.certificate for holder in registered))
        assert sender.encryption_certificate() == registered[1].certificate
