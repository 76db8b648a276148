"""A participant holding a real NCA GOST key, on a live gateway: the national operator's signed sample on
``/bip-sync-wss-gost/``, an asynchronous message signed with NCA's GOST test key, the gateway's answers signed with
that key in the caller's algorithm, and a delivery point that takes GOST.

NCA's material has expired, so this gateway's clock stands at 2019-06-01, inside the validity of the sample's
certificate (2019-04-04 – 2020-04-03) and of the GOST test key's (2018-08-23 – 2019-08-23)."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from gostcrypto.gostsignature.gost_34_10_2012 import CURVES_R_1323565_1_024_2019, GOST34102012, MODE_256
from lxml import etree
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from gateway.serving import BackgroundAsgiServer
from emulators.sync_provider import SyncProviderEmulator
from gateway.app import create_app
from gateway.security import gost, gost3411
from gateway.security.certificates import organisation_bin
from gateway.security.public_keys import public_key_of
from gateway.security.trust import load_certificates
from gateway.security.wssec import DS, EnvelopeSigner, verify_envelope
from gateway.security.xmldsig import GOST2004, RSA_SHA256, canonical
from gateway.soap.envelope import parse_xml
from registry.loader import bump_version
from registry.models import Service
from tests.conftest import gateway_settings
from tests.served import fault_code
from tests.wire import HTTP, REPO_ROOT, SAMPLES, assert_wire_valid, async_send, post, sync_request

NCA = REPO_ROOT.parent / "shared" / "peers" / "nca-test-pki"
GOST_KEY = NCA / "individual_valid" / "GOSTKNCA_f8a422238209b6e753116431b69b09178f14e9d7.p12"
GOST_KEY_PASSWORD = "Qwerty12"
AT = datetime(2019, 6, 1, tzinfo=UTC)
SAMPLE = SAMPLES / "nitec-sample-sync-request-gost.xml"

def sample_service_mode(engine: Engine, mode: int) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Service).where(Service.key == "TEST_SERVICE_ID").values(security_mode=mode))
        bump_version(session)


def _pem_bundle(folder: Path, *files: Path) -> Path:
    bundle = folder / "gost-anchors.pem"
    bundle.write_bytes(b"".join(
        certificate.public_bytes(serialization.Encoding.PEM) for file in files for certificate in load_certificates(file)
    ))
    return bundle


@pytest.fixture(scope="module")
def gost_gateway(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, engine: Engine, loaded_registry: None,
    gateway_key: tuple[Path, Path],
) -> Iterator[str]:
    # The sample's service requires a signature here; the test registry has it in mode 0, restored afterwards.
    sample_service_mode(engine, 2)
    anchors = _pem_bundle(tmp_path_factory.mktemp("gost"), NCA / "ca" / "nca_gost_test.crt", NCA / "certs" / "trusted" / "nca_gost.crt")
    settings = gateway_settings(
        database_url, signing_key=gateway_key[0], signing_cert=gateway_key[1], gost_signing_key=GOST_KEY,
        gost_signing_key_password=GOST_KEY_PASSWORD, trusted_gost_ca_file=anchors,
        crl_sources=str(NCA / "crl" / "nca_gost_test.crl"),
    )
    app = create_app(settings, engine=engine, clock=lambda: AT)
    try:
        with BackgroundAsgiServer(app) as server:
            yield server.url
    finally:
        app.close()
        sample_service_mode(engine, 0)


def independently_verified(envelope: bytes) -> bool:
    """Check a GOST signature with gostcrypto's curve arithmetic and constants, not the gateway's."""
    root = parse_xml(envelope)
    key = public_key_of(verify_envelope(root).certificate)
    value = base64.b64decode("".join(root.findtext(f".//{{{DS}}}SignatureValue").split()))
    e = int.from_bytes(gost3411.gost34311(canonical(root.find(f".//{{{DS}}}SignedInfo"), [])), "little") % gost.CRYPTOPRO_A.q or 1
    curve = GOST34102012(MODE_256, CURVES_R_1323565_1_024_2019["id-tc26-gost-3410-2012-256-paramSetB"])
    x, y = key.point
    return curve.verify(
        bytearray(x.to_bytes(32, "big") + y.to_bytes(32, "big")), bytearray(e.to_bytes(32, "big")),
        bytearray(value[:32][::-1] + value[32:][::-1]),
    )


def signature_method(envelope: bytes) -> str:
    return parse_xml(envelope).find(f".//{{{DS}}}SignatureMethod").get("Algorithm")


def test_the_operators_gost_sample_is_verified_and_answered_in_gost(gost_gateway: str, provider: SyncProviderEmulator) -> None:
    answer = post(f"{gost_gateway}/bip-sync-wss-gost/", SAMPLE.read_bytes())
    assert answer.status == 200, answer.body[:800]
    assert signature_method(answer.body) == GOST2004
    signer = verify_envelope(parse_xml(answer.body)).certificate
    assert organisation_bin(signer) == "123456789021", "signed with NCA's GOST test key"
    assert independently_verified(answer.body)
    assert_wire_valid(answer.payload)
    assert len(provider.received) == 1


def test_health_reports_both_keys_and_the_gost_crl(gost_gateway: str) -> None:
    post(f"{gost_gateway}/bip-sync-wss-gost/", SAMPLE.read_bytes())  # CRLs load at the first signature check
    report = json.loads(HTTP.request("GET", f"{gost_gateway}/health").data)
    assert report["signing_key"]["configured"] and report["gost_signing_key"]["configured"]
    assert report["gost_signing_key"]["not_after"].startswith("2019-08-23")
    assert report["gost_hash"] == "Python" or report["gost_hash"].startswith("Botan ")
    [crl] = report["crls"]
    assert crl["next_update"].startswith("2022-09-25"), "the GOST-signed CRL is loaded"


def test_the_sample_again_is_a_replay(gost_gateway: str) -> None:
    post(f"{gost_gateway}/bip-sync-wss-gost/", SAMPLE.read_bytes())
    again = post(f"{gost_gateway}/bip-sync-wss-gost/", SAMPLE.read_bytes())
    assert fault_code(again.body) == "SCE023"


def test_the_sample_with_a_changed_body_is_refused(gost_gateway: str, provider: SyncProviderEmulator) -> None:
    changed = SAMPLE.read_bytes().replace(b"999999999999", b"999999999998")
    answer = post(f"{gost_gateway}/bip-sync-wss-gost/", changed)
    assert fault_code(answer.body) == "SCE006"
    assert not provider.received


def gost_signed(envelope: str) -> bytes:
    return EnvelopeSigner.load(GOST_KEY, None, GOST_KEY_PASSWORD).sign(etree.fromstring(envelope.encode()))


def test_an_async_message_signed_with_an_nca_gost_key_is_accepted_and_answered_in_gost(gost_gateway: str) -> None:
    # NCA's production GOST CA publishes no CRL in the test material: the service lets an unknown status through.
    answer = post(f"{gost_gateway}/bip-async/", gost_signed(async_send("GostAsyncFailOpen", sender_id="senderId", password="senderPass")))
    assert answer.status == 200, answer.body[:800]
    assert signature_method(answer.body) == GOST2004
    assert independently_verified(answer.body)
    assert_wire_valid(answer.payload)


def test_an_unknown_revocation_status_is_refused_by_default(gost_gateway: str) -> None:
    answer = post(f"{gost_gateway}/bip-async/", gost_signed(async_send("GostAsyncStrict", sender_id="senderId", password="senderPass")))
    assert fault_code(answer.body) == "SCE005"
    assert b"no CRL of the issuer" in answer.body


@pytest.mark.parametrize(("path", "method"), [("/bip-sync/", RSA_SHA256), ("/bip-sync-wss-gost/", GOST2004)])
def test_an_unverified_caller_is_answered_in_the_endpoints_algorithm(gost_gateway: str, path: str, method: str) -> None:
    answer = post(f"{gost_gateway}{path}", sync_request(service_id="GostOrRsaAnswered"))
    assert answer.status == 200, answer.body[:800]
    assert signature_method(answer.body) == method
    verify_envelope(parse_xml(answer.body))


def test_a_gost_delivery_point_gets_requests_signed_with_gost(gost_gateway: str, provider: SyncProviderEmulator) -> None:
    answer = post(f"{gost_gateway}/bip-sync/", sync_request(service_id="GostForwarded", sender_id="senderId", password="senderPass"))
    assert answer.status == 200, answer.body[:800]
    forwarded = provider.received[0]
    assert forwarded.path == "/provider/gost"
    assert signature_method(forwarded.body) == GOST2004
    assert independently_verified(forwarded.body)
