"""OCSP: NCA's real responses judged as of a time inside their validity, and the client against the responder
emulator over real HTTP on loopback (POST and GET, cache, expiry, outages, responders not authorised)."""
from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.serving import BackgroundServer
from emulators.ocsp_responder import OcspResponderEmulator
from gateway.health import DatabaseStatus, HealthCheck
from gateway.maintenance import MaintenanceState
from gateway.security.ocsp import (
    CertificateStatus,
    OcspClient,
    OcspError,
    OcspUnavailable,
    build_request,
    judge_response,
    responder_url,
)
from gateway.security.pki import Issued, create_ca, issue_participant
from journals.times import iso_utc

# NCA's names have attributes longer than X.520 allows; cryptography warns at every parse.
pytestmark = pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")

NCA = Path(__file__).resolve().parents[2] / "shared" / "peers" / "nca-test-pki"
# Every real response was produced on 2022-09-02 between 16:53 and 16:59 UTC, inside its responder's validity.
AT = datetime(2022, 9, 2, 17, 0, tzinfo=UTC)


@dataclass(frozen=True)
class RealCase:
    response: str
    ca: str
    serial: int  # the CertID's serial; found to belong to the CA by the CertID's issuer name and key hashes
    status: CertificateStatus
    revoked_at: datetime | None
    reason: str | None
    nonce: str  # what the request that got this response carried (NCANode's OcspServiceTest)


# The certificates these responses are about are in NCANode's PKCS#12 test keys (KEY_INDIVIDUAL_VALID_SIGN_2004,
# KEY_CEO_SIGN_REVOKED_2004, KEY_CEO_REVOKED_2015, KEY_INDIVIDUAL_VALID_2015), not among the shared certs/: the
# tests stand in a certificate with the same serial and issuer, which is all a CertID is made of.
REAL = [
    RealCase("ocsp_response_individual_sign_2004.bin", "ca/nca_rsa_test.crt", 0x4279390A141F5353A62947B61ED65E81741467D1,
             CertificateStatus.GOOD, None, None, "b5e5c9b552cbcac4"),
    RealCase("ocsp_response_ceo_sign_2004_revoked.bin", "ca/nca_gost_test.crt", 0x12E3E7B9966D09EB9CDA64251457E815C2A8DDED,
             CertificateStatus.REVOKED, datetime(2022, 1, 18, 6, 30, 55, tzinfo=UTC), "superseded", "8b6b9f100d6b0005"),
    RealCase("ocsp_response_ceo_2015_revoked.bin", "ca/nca_gost2015_test.cer", 0x3A90343E720594C55204B19CB9A402422EF0E622,
             CertificateStatus.REVOKED, datetime(2022, 7, 27, 10, 25, 30, tzinfo=UTC), "certificate_hold", "157b28fd1ac7761e"),
    # Revoked "at" 1970-01-01 on hold: the answer RFC 6960 §2.2 prescribes for a serial the responder does not
    # know as issued (NCA's responses carry id-pkix-ocsp-extended-revoke), though the certificate exists.
    RealCase("ocsp_response_individual_2015.bin", "ca/nca_gost2015_test.cer", 0x0FF06211DC82BEB00253FFA000F1DE84ABEF454F,
             CertificateStatus.REVOKED, datetime(1970, 1, 1, tzinfo=UTC), "certificate_hold", "e408ffb790834af2"),
]
RSA_CASE = REAL[0]


def _load(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)


def _stand_in(serial: int, issuer: x509.Certificate) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in")]))
        .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(serial)
        .not_valid_before(datetime(2022, 1, 1)).not_valid_after(datetime(2023, 1, 1))
        .sign(key, hashes.SHA256())
    )


def _real(case: RealCase) -> tuple[bytes, x509.Certificate, x509.Certificate]:
    if not NCA.is_dir():
        pytest.skip(f"the NCA test PKI is not at {NCA}")
    issuer = _load(NCA / case.ca)
    return (NCA / "ocsp" / case.response).read_bytes(), _stand_in(case.serial, issuer), issuer


@pytest.mark.parametrize("case", REAL, ids=lambda case: case.response.removeprefix("ocsp_response_").removesuffix(".bin"))
def test_real_responses_are_judged_right(case: RealCase) -> None:
    response, certificate, issuer = _real(case)
    verdict = judge_response(response, certificate, issuer, AT, nonce=bytes.fromhex(case.nonce))
    assert (verdict.status, verdict.revoked_at, verdict.revocation_reason) == (case.status, case.revoked_at, case.reason)
    assert verdict.next_update is None and AT - timedelta(minutes=10) < verdict.this_update <= verdict.produced_at < AT
    assert "OCSP RESPONDER" in verdict.responder or "СЕРВИС ПРОВЕРКИ ОНЛАЙН СТАТУСА СЕРТИФИКАТА" in verdict.responder


def test_real_response_echoing_another_nonce_is_refused() -> None:
    response, certificate, issuer = _real(RSA_CASE)
    with pytest.raises(OcspError, match="nonce"):
        judge_response(response, certificate, issuer, AT, nonce=bytes(8))


@pytest.mark.parametrize("case", REAL, ids=lambda case: case.response.removeprefix("ocsp_response_").removesuffix(".bin"))
def test_a_changed_byte_breaks_the_signature(case: RealCase) -> None:
    response, certificate, issuer = _real(case)
    parsed = ocsp.load_der_ocsp_response(response)
    # A digit of producedAt (the DER stays well-formed) and a bit of the signature.
    produced_at = parsed.produced_at_utc.strftime("%Y%m%d%H%M%SZ").encode()
    for at in (response.index(produced_at) + len(produced_at) - 2, response.index(parsed.signature) + len(parsed.signature) // 2):
        changed = response[:at] + bytes([response[at] ^ 0x01]) + response[at + 1:]
        with pytest.raises(OcspError, match="signature"):
            judge_response(changed, certificate, issuer, AT)


def test_a_response_about_another_certificate_is_refused() -> None:
    response, _, issuer = _real(RSA_CASE)
    # The shared individual certificate of the same CA is not the one this response is about.
    other = _load(NCA / "certs" / "individual_valid_sign_2004_rsa.cer")
    with pytest.raises(OcspError, match=f"not about serial {other.serial_number:x}"):
        judge_response(response, other, issuer, AT)
    with pytest.raises(OcspError, match="not the certificate's issuer"):
        judge_response(response, other, _load(NCA / "ca" / "nca_gost_test.crt"), AT)


@pytest.mark.parametrize(("at", "max_age", "problem"), [
    (datetime(2022, 9, 2, 16, 0, tzinfo=UTC), None, "in the future"),
    (AT, timedelta(minutes=1), "older than"),
    (datetime(2023, 6, 1, tzinfo=UTC), None, "responder's certificate is not valid"),  # it ended 2023-03-25
])
def test_real_response_out_of_its_time(at: datetime, max_age: timedelta | None, problem: str) -> None:
    response, certificate, issuer = _real(RSA_CASE)
    with pytest.raises(OcspError, match=problem):
        judge_response(response, certificate, issuer, at, max_age=max_age)


def test_responder_url_from_aia() -> None:
    if not NCA.is_dir():
        pytest.skip(f"the NCA test PKI is not at {NCA}")
    assert responder_url(_load(NCA / "certs" / "ceo_valid_sign_2004_gost.cer")) == "http://test.pki.gov.kz/ocsp/"
    assert responder_url(_load(NCA / "ca" / "nca_rsa_test.crt")) is None


# --- the client against the emulator -------------------------------------------------------------------------


class Clock:
    """A clock the test moves; shared by the emulator and the client."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def _responder(issuer: Issued, *, ocsp_signing: bool = True) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "OCSP RESPONDER"), x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
        ]))
        .issuer_name(issuer.certificate.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    if ocsp_signing:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return key, builder.sign(issuer.key, hashes.SHA256())


def _with_aia(holder: Issued, ca: Issued, url: str) -> x509.Certificate:
    """``holder``'s certificate again, naming ``url`` as its OCSP responder."""
    original = holder.certificate
    aia = x509.AuthorityInformationAccess([
        x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)),
    ])
    return (
        x509.CertificateBuilder().subject_name(original.subject).issuer_name(original.issuer).public_key(original.public_key())
        .serial_number(original.serial_number).not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc).add_extension(aia, critical=False).sign(ca.key, hashes.SHA256())
    )


@dataclass
class Setup:
    ca: Issued
    holder: x509.Certificate
    emulator: OcspResponderEmulator
    server: BackgroundServer
    clock: Clock

    def client(self, max_age_seconds: float = 3600.0, override: bool = True) -> OcspClient:
        return OcspClient(responder_override=self.server.url if override else None, timeout_seconds=5.0,
                          max_age_seconds=max_age_seconds, clock=self.clock)


@pytest.fixture(scope="module")
def ca() -> Issued:
    return create_ca()


@pytest.fixture
def setup(ca: Issued) -> Iterator[Setup]:
    clock = Clock()
    key, certificate = _responder(ca)
    emulator = OcspResponderEmulator(ca.certificate, key, certificate, next_update=timedelta(hours=1), clock=clock)
    with BackgroundServer(emulator, threads=4) as server:
        yield Setup(ca, issue_participant(ca, "123456789021").certificate, emulator, server, clock)


def test_good_over_post_through_a_delegated_responder(setup: Setup) -> None:
    verdict = setup.client().status(setup.holder, setup.ca.certificate)
    assert verdict.status is CertificateStatus.GOOD and verdict.responder == "C=KZ,CN=OCSP RESPONDER"
    assert verdict.next_update == setup.clock.now + timedelta(hours=1)
    assert setup.emulator.methods == {"POST": 1}


def test_a_responder_ignoring_the_nonce_is_accepted(setup: Setup) -> None:
    setup.emulator.echo_nonce = False
    assert setup.client().status(setup.holder, setup.ca.certificate).status is CertificateStatus.GOOD


def test_good_signed_by_the_ca_itself(ca: Issued) -> None:
    emulator = OcspResponderEmulator(ca.certificate, ca.key, None)  # type: ignore[arg-type]
    holder = issue_participant(ca, None).certificate
    with BackgroundServer(emulator, threads=2) as server:
        client = OcspClient(responder_override=server.url, timeout_seconds=5.0, max_age_seconds=60.0)
        verdict = client.status(holder, ca.certificate)
    assert verdict.status is CertificateStatus.GOOD and verdict.responder == ca.certificate.subject.rfc4514_string()


def test_revoked_with_its_time_and_reason(setup: Setup) -> None:
    revoked_at = setup.clock.now - timedelta(days=3)
    setup.emulator.revoke(setup.holder.serial_number, revoked_at, x509.ReasonFlags.key_compromise)
    verdict = setup.client().status(setup.holder, setup.ca.certificate)
    assert verdict.status is CertificateStatus.REVOKED
    assert (verdict.revoked_at, verdict.revocation_reason) == (revoked_at, "key_compromise")
    setup.emulator.reinstate(setup.holder.serial_number)
    assert setup.client().status(setup.holder, setup.ca.certificate).status is CertificateStatus.GOOD


def test_unknown_serial(setup: Setup) -> None:
    setup.emulator.issued_serials = {setup.holder.serial_number + 1}
    assert setup.client().status(setup.holder, setup.ca.certificate).status is CertificateStatus.UNKNOWN


def test_unknown_for_an_issuer_it_does_not_serve(setup: Setup) -> None:
    other_ca = create_ca("Another CA")
    stranger = issue_participant(other_ca, None).certificate
    nonce = bytes(range(16))
    answer = ocsp.load_der_ocsp_response(setup.emulator.answer(build_request(stranger, other_ca.certificate, nonce)))
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # The client cannot rely on it: the responder is not the other CA's.
    with pytest.raises(OcspUnavailable, match="not issued by the certificate's CA"):
        setup.client().status(stranger, other_ca.certificate)


@pytest.mark.parametrize("encode", [
    lambda der: quote(base64.b64encode(der).decode(), safe=""),  # RFC 6960 Appendix A.1
    lambda der: base64.urlsafe_b64encode(der).decode().rstrip("="),
], ids=["base64-url-escaped", "base64url"])
def test_get(setup: Setup, encode: object) -> None:
    setup.emulator.revoke(setup.holder.serial_number, setup.clock.now, None)
    nonce = bytes(range(32))
    path = encode(build_request(setup.holder, setup.ca.certificate, nonce))  # type: ignore[operator]
    response = urllib3.request("GET", f"{setup.server.url}/{path}", retries=False, timeout=5.0)
    assert response.status == 200 and response.headers["Content-Type"] == "application/ocsp-response"
    verdict = judge_response(response.data, setup.holder, setup.ca.certificate, setup.clock.now, nonce=nonce)
    assert verdict.status is CertificateStatus.REVOKED and setup.emulator.methods == {"GET": 1}


@pytest.mark.parametrize(("method", "target", "body"), [
    ("POST", "/", b"not an OCSP request"),
    ("POST", "/", b""),
    ("GET", "/bm90IGFuIE9DU1AgcmVxdWVzdA", None),
    ("GET", "/%%%", None),
])
def test_garbage_gets_malformed_request(setup: Setup, method: str, target: str, body: bytes | None) -> None:
    response = urllib3.request(method, setup.server.url + target, body=body, retries=False, timeout=5.0,
                               headers={"Content-Type": "application/ocsp-request"})
    assert response.status == 200
    assert ocsp.load_der_ocsp_response(response.data).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_the_cache_answers_until_next_update(setup: Setup) -> None:
    setup.emulator.next_update = timedelta(minutes=10)
    client = setup.client(max_age_seconds=3600)
    first = client.status(setup.holder, setup.ca.certificate)
    setup.clock.now += timedelta(minutes=9, seconds=59)
    assert client.status(setup.holder, setup.ca.certificate) is first and setup.emulator.requests == 1
    [cached] = client.report()["responses"]
    assert cached["serial"] == f"{setup.holder.serial_number:x}" and cached["status"] == "good" and cached["fresh"] is True
    setup.clock.now += timedelta(seconds=1)
    assert client.report()["responses"][0]["fresh"] is False
    assert client.status(setup.holder, setup.ca.certificate) is not first and setup.emulator.requests == 2


@pytest.mark.parametrize("next_update", [None, timedelta(hours=1)], ids=["no-next-update", "max-age-sooner"])
def test_the_cache_answers_for_max_age(setup: Setup, next_update: timedelta | None) -> None:
    setup.emulator.next_update = next_update
    client = setup.client(max_age_seconds=300)
    verdict = client.status(setup.holder, setup.ca.certificate)
    assert client.report()["responses"][0]["expires_at"] == iso_utc(setup.clock.now + timedelta(seconds=300))
    setup.clock.now += timedelta(seconds=299)
    assert client.status(setup.holder, setup.ca.certificate) is verdict and setup.emulator.requests == 1
    setup.clock.now += timedelta(seconds=1)
    client.status(setup.holder, setup.ca.certificate)
    assert setup.emulator.requests == 2


def test_the_responder_named_in_aia_is_asked(setup: Setup) -> None:
    holder = _with_aia(issue_participant(setup.ca, None), setup.ca, setup.server.url + "/")
    assert setup.client(override=False).status(holder, setup.ca.certificate).status is CertificateStatus.GOOD
    with pytest.raises(OcspUnavailable, match="names no OCSP responder"):
        setup.client(override=False).status(setup.holder, setup.ca.certificate)


def test_responder_down(setup: Setup) -> None:
    client = setup.client()
    setup.server.stop()
    with pytest.raises(OcspUnavailable, match="unreachable"):
        client.status(setup.holder, setup.ca.certificate)
    [responder] = client.report()["responders"]
    assert responder["url"] == setup.server.url and responder["state"] == "unreachable" and responder["reachable"] is False

    class Probe:
        def current(self) -> DatabaseStatus:
            return DatabaseStatus(MaintenanceState(False), 0)

    status, report = HealthCheck(Probe(), None, None, ocsp=client).report()  # type: ignore[arg-type]
    assert status == 200 and report["status"] == "degraded" and report["ocsp"] == client.report()
    assert f"OCSP responder {setup.server.url} was unreachable at its last try" in report["problems"]


@pytest.mark.parametrize("responder", ["without OCSPSigning", "of another CA"])
def test_a_responder_not_delegated_is_refused(ca: Issued, responder: str) -> None:
    if responder == "without OCSPSigning":
        key, certificate = _responder(ca, ocsp_signing=False)
    else:
        key, certificate = _responder(create_ca("Another CA"))
    holder = issue_participant(ca, None).certificate
    with BackgroundServer(OcspResponderEmulator(ca.certificate, key, certificate), threads=2) as server:
        client = OcspClient(responder_override=server.url, timeout_seconds=5.0, max_age_seconds=60.0)
        with pytest.raises(OcspUnavailable, match="not delegated for OCSP signing|not issued by the certificate's CA"):
            client.status(holder, ca.certificate)
    assert client.report()["responders"][0]["state"] == "bad_response" and client.report()["responses"] == []


def test_an_oversized_or_failed_answer_is_refused(ca: Issued) -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        big = environ["PATH_INFO"] == "/big"
        body = b"0" * (100 * 1024) if big else b"busy"
        start_response("200 OK" if big else "503 Busy", [("Content-Length", str(len(body)))])  # type: ignore[operator]
        return [body]

    holder = issue_participant(ca, None).certificate
    with BackgroundServer(app, threads=2) as server:
        for path, problem in (("/big", "more than 65536 bytes"), ("/busy", "HTTP 503")):
            client = OcspClient(responder_override=server.url + path, timeout_seconds=5.0, max_age_seconds=60.0)
            with pytest.raises(OcspUnavailable, match=problem):
                client.status(holder, ca.certificate)


def test_concurrent_callers(setup: Setup) -> None:
    client = setup.client()
    verdicts: list[CertificateStatus] = []
    lock = threading.Lock()

    def ask() -> None:
        status = client.status(setup.holder, setup.ca.certificate).status
        with lock:
            verdicts.append(status)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert verdicts == [CertificateStatus.GOOD] * 8 and 1 <= setup.emulator.requests <= 8
    assert len(client.report()["responses"]) == 1


def test_the_emulator_from_files(ca: Issued, tmp_path: Path) -> None:
    key, certificate = _responder(ca)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "responder.key").write_bytes(key_pem)
    (tmp_path / "responder.der").write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    emulator = OcspResponderEmulator.from_files(tmp_path / "ca.pem", tmp_path / "responder.key", tmp_path / "responder.der", None)
    holder = issue_participant(ca, None).certificate
    nonce = bytes(16)
    verdict = judge_response(emulator.answer(build_request(holder, ca.certificate, nonce)), holder, ca.certificate,
                             datetime.now(UTC), nonce=nonce)
    assert verdict.status is CertificateStatus.GOOD and verdict.next_update is None
