"""GOST 34.10-2015 (512-bit) against real NCA RK test material, read at run time from ../shared (never copied)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from gostcrypto.gostsignature import gost_34_10_2012 as gc

from gateway.security import gost2015 as g
from gateway.security.public_keys import subject_public_key_info

PKI = Path(__file__).resolve().parents[2] / "shared" / "peers" / "nca-test-pki"
OCSP_FILES = ["ocsp_response_ceo_2015_revoked.bin", "ocsp_response_individual_2015.bin"]

pytestmark = [
    pytest.mark.skipif(not PKI.is_dir(), reason="NCA test PKI material not available"),
    # The NCA names have 69-71 character CNs; cryptography warns about the X.520 upper bound.
    pytest.mark.filterwarnings("ignore:Attribute's length must be"),
]


def _read(rel: str) -> bytes:
    return (PKI / rel).read_bytes()


@pytest.fixture(scope="module")
def ca_der() -> bytes:
    return _read("ca/nca_gost2015_test.cer")


@pytest.fixture(scope="module")
def ca_spki(ca_der: bytes) -> bytes:
    return subject_public_key_info(x509.load_der_x509_certificate(ca_der))


@pytest.fixture(scope="module")
def crl() -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(_read("crl/nca_gost2022_test.crl"))


def test_spki_parameters(ca_spki: bytes) -> None:
    curve_oid, (x, y) = g.public_point_2015(ca_spki)
    assert curve_oid == g.OID_CURVE_2015_512_A
    c = g.CURVES_2015[curve_oid]
    assert c["p"] == 2**512 - 569  # TC26 512-bit paramSetA (RFC 7836)
    assert (y * y - x**3 - c["a"] * x - c["b"]) % c["p"] == 0
    # spki_2015 rebuilds the DER byte for byte.
    assert g.spki_2015(curve_oid, (x, y)) == ca_spki


def test_crl_verifies_under_ca_key(ca_spki: bytes, crl: x509.CertificateRevocationList) -> None:
    assert crl.signature_algorithm_oid.dotted_string == g.OID_SIGNATURE_2015_512
    tbs = crl.tbs_certlist_bytes
    assert g.verify_2015(ca_spki, tbs, crl.signature)
    changed = bytearray(tbs)
    changed[len(changed) // 2] ^= 0x01
    assert not g.verify_2015(ca_spki, bytes(changed), crl.signature)


def test_wrong_layouts_fail(ca_spki: bytes, crl: x509.CertificateRevocationList) -> None:
    sig = crl.signature
    assert not g.verify_2015(ca_spki, crl.tbs_certlist_bytes, sig[::-1])  # s BE ‖ r BE (RFC 4491 style)
    assert not g.verify_2015(ca_spki, crl.tbs_certlist_bytes, sig[64:] + sig[:64])  # s LE ‖ r LE
    assert not g.verify_2015(ca_spki, crl.tbs_certlist_bytes, sig[:127])


def test_ca_certificate_is_not_self_signed(ca_der: bytes, ca_spki: bytes) -> None:
    # Issued by "НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST 2022", whose certificate is not in the material.
    ca = x509.load_der_x509_certificate(ca_der)
    assert ca.issuer != ca.subject
    assert not g.verify_2015(ca_spki, ca.tbs_certificate_bytes, ca.signature)


@pytest.mark.parametrize("name", OCSP_FILES)
def test_ocsp_response_verifies_under_its_responder(name: str, ca_spki: bytes) -> None:
    resp = ocsp.load_der_ocsp_response(_read(f"ocsp/{name}"))
    assert resp.signature_algorithm_oid.dotted_string == g.OID_SIGNATURE_2015_512
    (responder,) = resp.certificates
    responder_spki = subject_public_key_info(responder)
    assert g.verify_2015(responder_spki, resp.tbs_response_bytes, resp.signature)
    assert not g.verify_2015(ca_spki, resp.tbs_response_bytes, resp.signature)


def test_responder_certificate_verifies_under_ca(ca_spki: bytes) -> None:
    resp = ocsp.load_der_ocsp_response(_read(f"ocsp/{OCSP_FILES[0]}"))
    (responder,) = resp.certificates
    assert g.verify_2015(ca_spki, responder.tbs_certificate_bytes, responder.signature)


def test_sign_round_trip_and_gostcrypto_cross_check() -> None:
    oid = g.OID_CURVE_2015_512_A
    q = g.CURVES_2015[oid]["q"]
    d = 1 + int.from_bytes(os.urandom(72), "big") % (q - 1)
    x, y = g.public_key_2015(oid, d)
    spki = g.spki_2015(oid, (x, y))
    data = b"<ds:SignedInfo>test</ds:SignedInfo>"
    sig = g.sign_2015(oid, d, data)
    assert len(sig) == 128
    assert g.verify_2015(spki, data, sig)
    assert not g.verify_2015(spki, data + b" ", sig)
    # Independently, with gostcrypto's own API and its big-endian conventions: e = digest read LE = reversed
    # digest read BE; signature r BE ‖ s BE; public key x BE ‖ y BE from its own public_key_generate.
    engine = gc.GOST34102012(gc.MODE_512, gc.CURVES_R_1323565_1_024_2019["id-tc26-gost-3410-12-512-paramSetA"])
    public = engine.public_key_generate(bytearray(d.to_bytes(64, "big")))
    assert bytes(public) == x.to_bytes(64, "big") + y.to_bytes(64, "big")
    digest = bytearray(g.streebog512(data)[::-1])
    assert engine.verify(public, digest, bytearray(sig[:64][::-1] + sig[64:][::-1]))


def test_streebog512_byte_order() -> None:
    # GOST R 34.11-2012 example M1 (RFC 6986 §10.1): the message is the ASCII string below, read as the standard
    # does; the digest bytes are written in the gost-engine / gostcrypto order (the standard's hex reversed).
    m1 = b"012345678901234567890123456789012345678901234567890123456789012"
    expected = bytes.fromhex(
        "486f64c1917879417fef082b3381a4e211c324f074654c38823a7b76f830ad00"
        "fa1fbae42b1285c0352f227524bc9ab16254288dd6863dccd5b9f54a1ad0541b"
    )[::-1]
    assert g.streebog512(m1) == expected
