"""GOST 34.310 transport signatures on the national operator's real samples, and NCA's GOST chains and CRLs, as of a
time inside the material's validity (it has all expired)."""
from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from types import SimpleNamespace

import gostcrypto
from gostcrypto.gostsignature.gost_34_10_2012 import CURVES_R_1323565_1_024_2019
import pytest
from cryptography import x509
from lxml import etree

from gateway.errors import GatewayError
from gateway.security import gost, gost3411
from gateway.security.certificates import check_signer, holder_iin, organisation_bin
from gateway.security.crls import CrlStore, crl_signed_by
from gateway.security.public_keys import GostPublicKey, public_key_of
from gateway.security.trust import Family, TrustStore, load_certificates
from gateway.security.wssec import DS, sign_envelope, verify_envelope
from gateway.security.xmldsig import GOST2004_DIGEST, GOST2015_DIGEST, canonical, digest
from gateway.soap.envelope import parse_xml
from tests.pki import participant
from tests.wire import REPO_ROOT, SAMPLES, SOAP_ENV, sync_request

NCA = REPO_ROOT.parent / "shared" / "peers" / "nca-test-pki"
REQUEST = SAMPLES / "nitec-sample-sync-request-gost.xml"
RESPONSE = SAMPLES / "nitec-sample-sync-response-gost.xml"
GO_MOCK = SAMPLES / "go-mock-shep-sync-response-gost-issuerserial.xml"
AT = datetime(2019, 6, 1, tzinfo=UTC)  # inside the validity of the samples' certificate and of its CA


def gost_test_ca() -> x509.Certificate:
    return load_certificates(NCA / "ca" / "nca_gost_test.crt")[0]


def gost_crl() -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((NCA / "crl" / "nca_gost_test.crl").read_bytes())


def refusal(data: bytes, registered=lambda _issuer, _serial: None) -> GatewayError:  # noqa: ANN001
    with pytest.raises(GatewayError) as refused:
        verify_envelope(parse_xml(data), registered)
    return refused.value


@pytest.mark.parametrize("sample", [REQUEST, RESPONSE], ids=["request", "response"])
def test_the_national_operators_gost_samples_verify(sample) -> None:  # noqa: ANN001
    verified = verify_envelope(parse_xml(sample.read_bytes()))
    certificate = verified.certificate
    assert f"{certificate.serial_number:x}".startswith("3cb717f0")
    assert organisation_bin(certificate) == "123456789021"
    assert holder_iin(certificate) == "123456789011"
    assert isinstance(public_key_of(certificate), GostPublicKey)
    check_signer(certificate, "123456789021", AT)


@pytest.mark.parametrize("sample", [REQUEST, RESPONSE], ids=["request", "response"])
def test_one_changed_body_character_fails_as_for_rsa(sample) -> None:  # noqa: ANN001
    data = sample.read_bytes()
    body_at = data.index(b"Body")
    changed = data[:body_at] + data[body_at:].replace(b"<messageId>", b"<messageId>0", 1)
    refused = refusal(changed)
    assert refused.error.code == "SCE006"
    assert "digest does not match" in refused.data


def test_a_changed_signed_info_fails_as_for_rsa() -> None:
    # The DigestValue still decodes to the same bytes, but SignedInfo's canonical form, which is signed, changed.
    changed = REQUEST.read_bytes().replace(b"<ds:DigestValue>kdld", b"<ds:DigestValue> kdld", 1)
    refused = refusal(changed)
    assert refused.error.code == "SCE006"
    assert "signature does not verify" in refused.data


def test_a_changed_signature_value_fails() -> None:
    changed = REQUEST.read_bytes().replace(b"CHgmgKzhwjx0", b"CHgmgKzhwjx1", 1)
    assert "signature does not verify" in refusal(changed).data


def test_a_wrapped_gost_body_is_refused() -> None:
    root = parse_xml(REQUEST.read_bytes())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    wrapper = etree.SubElement(root.find(f"{{{SOAP_ENV}}}Header"), "{urn:evil}Wrapper")
    wrapper.append(copy.deepcopy(body))
    for child in body:
        body.remove(child)
    etree.SubElement(body, "{urn:evil}Forged")
    assert refusal(etree.tostring(root)).error.code == "SCE006"


def test_a_duplicated_gost_body_id_is_refused() -> None:
    root = parse_xml(REQUEST.read_bytes())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    twin = etree.SubElement(root.find(f"{{{SOAP_ENV}}}Header"), "{urn:evil}Twin")
    twin.attrib.update(body.attrib)
    refused = refusal(etree.tostring(root))
    assert refused.error.code == "SCE006" and "names 2 elements" in refused.data


def test_the_go_mock_samples_digest_verifies_and_its_signer_must_be_registered() -> None:
    root = parse_xml(GO_MOCK.read_bytes())
    reference = root.find(f".//{{{DS}}}Reference")
    expected = base64.b64decode(reference.findtext(f"{{{DS}}}DigestValue"))
    assert digest(canonical(root.find(f"{{{SOAP_ENV}}}Body"), []), GOST2004_DIGEST) == expected
    refused = refusal(GO_MOCK.read_bytes())
    assert refused.error.code == "SCE006" and "no registered certificate" in refused.data
    # Registered under that issuer and serial, a certificate with another key does not make the signature hold.
    someone_else = verify_envelope(parse_xml(REQUEST.read_bytes())).certificate
    looked_up: list[tuple[x509.Name, int]] = []

    def registered(issuer: x509.Name, serial: int) -> x509.Certificate:
        looked_up.append((issuer, serial))
        return someone_else

    assert "signature does not verify" in refusal(GO_MOCK.read_bytes(), registered).data
    issuer, serial = looked_up[0]
    assert "(GOST)" in issuer.rfc4514_string()
    assert serial > 0


def test_the_samples_certificate_chains_to_the_nca_gost_test_ca() -> None:
    certificate = verify_envelope(parse_xml(REQUEST.read_bytes())).certificate
    ca = gost_test_ca()
    store = TrustStore({Family.GOST: [ca]}, CrlStore([ca], [], 3600), clock=lambda: AT)
    assert store.chain(certificate) == [ca]
    with pytest.raises(GatewayError) as refused:
        TrustStore({Family.RSA: [ca]}, CrlStore([ca], [], 3600), clock=lambda: AT).chain(certificate)
    assert refused.value.error.code == "SCE024", "GOST certificates chain to GOST anchors only"
    with pytest.raises(GatewayError) as expired:
        TrustStore({Family.GOST: [ca]}, CrlStore([ca], [], 3600), clock=lambda: datetime(2025, 1, 1, tzinfo=UTC)).chain(certificate)
    assert expired.value.error.code == "SCE024", "the CA itself expired in 2024"


def test_the_gost_crl_is_parsed_and_its_signature_checked(tmp_path) -> None:  # noqa: ANN001
    ca, crl = gost_test_ca(), gost_crl()
    assert crl_signed_by(crl, ca)
    tampered = bytearray((NCA / "crl" / "nca_gost_test.crl").read_bytes())
    tampered[100] ^= 1
    (tmp_path / "tampered.crl").write_bytes(bytes(tampered))
    store = CrlStore([ca], [str(tmp_path / "tampered.crl"), str(NCA / "crl" / "nca_gost_test.crl")], 3600)
    assert store.crl_of(ca) is not None
    freshness = store.freshness()
    assert freshness[str(tmp_path / "tampered.crl")] is None, "a CRL whose signature fails is not loaded"
    assert freshness[str(NCA / "crl" / "nca_gost_test.crl")] == crl.next_update_utc


def test_a_serial_listed_in_the_gost_crl_is_refused_as_revoked() -> None:
    ca, crl = gost_test_ca(), gost_crl()
    listed = next(iter(crl))
    store = TrustStore(
        {Family.GOST: [ca]}, CrlStore([ca], [str(NCA / "crl" / "nca_gost_test.crl")], 3600),
        clock=lambda: datetime(2022, 6, 1, tzinfo=UTC),
    )
    status = store.revocation(SimpleNamespace(serial_number=listed.serial_number), ca)
    assert status.revoked and status.revoked_at == listed.revocation_date_utc
    samples_certificate = verify_envelope(parse_xml(REQUEST.read_bytes())).certificate
    assert not store.revocation(samples_certificate, ca).revoked


def test_our_curve_agrees_with_an_independent_implementation_on_the_real_signature() -> None:
    root = parse_xml(REQUEST.read_bytes())
    certificate = verify_envelope(root).certificate
    key = public_key_of(certificate)
    signed = canonical(root.find(f".//{{{DS}}}SignedInfo"), [])
    value = base64.b64decode("".join(root.findtext(f".//{{{DS}}}SignatureValue").split()))
    # RFC 4357's CryptoPro-A is TC26's 256-bit paramSetB: gostcrypto's own constants, not ours.
    independent = gostcrypto.gostsignature.new(
        gostcrypto.gostsignature.MODE_256, CURVES_R_1323565_1_024_2019["id-tc26-gost-3410-2012-256-paramSetB"]
    )
    # gostcrypto takes big-endian numbers: x||y, r||s, and e as an integer of the digest's bytes.
    x, y = key.point
    public = bytearray(x.to_bytes(32, "big") + y.to_bytes(32, "big"))
    big_endian = bytearray(value[:32][::-1] + value[32:][::-1])
    e = int.from_bytes(gost3411.gost34311(signed), "little") % gost.CRYPTOPRO_A.q or 1
    assert independent.verify(public, bytearray(e.to_bytes(32, "big")), big_endian)
    assert not independent.verify(public, bytearray((e ^ 1).to_bytes(32, "big")), big_endian)


def test_a_gost_digest_with_an_rsa_signature_is_refused_before_any_hashing() -> None:
    key, cert = participant("990140000022")
    signed = etree.tostring(sign_envelope(etree.fromstring(sync_request().encode()), key, cert))
    mixed = signed.replace(b"http://www.w3.org/2001/04/xmlenc#sha256", GOST2015_DIGEST.encode())
    refused = refusal(mixed)
    assert refused.error.code == "SCE006" and "does not go with" in refused.data
