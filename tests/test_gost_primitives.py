"""GOST R 34.11-94 and GOST R 34.10-2001 primitives (gateway/security/gost3411.py and gost.py) against known answers, a plain
implementation of the hash written here straight from the standard, the independent ``gostcrypto`` for the curve
arithmetic, and the real NCA-signed samples of the national operator (gost.md)."""
from __future__ import annotations

import base64
import random
from pathlib import Path

import gostcrypto.gostsignature as gostsignature
import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.security import gost, gost3411

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "peers" / "shep-wsdl" / "samples"
NCA_GOST_CA = SHARED / "peers" / "nca-test-pki" / "ca" / "nca_gost_test.crt"
NS = {
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "S": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
}
CURVE = gost.CRYPTOPRO_A
Q = CURVE.q


# --- GOST R 34.11-94, the plainest way: byte strings, byte 0 least significant, no tables --------------------

PLAIN_SBOX = [
    [4, 10, 9, 2, 13, 8, 0, 14, 6, 11, 1, 12, 7, 15, 5, 3],
    [14, 11, 4, 12, 6, 13, 15, 10, 2, 3, 8, 1, 0, 7, 5, 9],
    [5, 8, 1, 13, 10, 3, 4, 2, 14, 15, 12, 7, 6, 0, 9, 11],
    [7, 13, 10, 1, 0, 8, 9, 15, 14, 4, 6, 12, 11, 2, 5, 3],
    [6, 12, 7, 1, 5, 15, 13, 8, 4, 10, 9, 14, 0, 3, 11, 2],
    [4, 11, 10, 0, 7, 2, 1, 13, 3, 6, 8, 5, 9, 12, 15, 14],
    [13, 11, 4, 1, 3, 15, 5, 9, 0, 10, 14, 7, 6, 8, 2, 12],
    [1, 15, 13, 0, 5, 7, 10, 4, 9, 2, 3, 14, 6, 11, 8, 12],
]


def plain_f(x: int) -> int:
    y = 0
    for i in range(8):
        y |= PLAIN_SBOX[i][(x >> 4 * i) & 15] << 4 * i
    return ((y << 11) | (y >> 21)) & 0xFFFFFFFF


def plain_encrypt(key: bytes, block: bytes) -> bytes:
    k = [int.from_bytes(key[4 * i:4 * i + 4], "little") for i in range(8)]
    n1, n2 = int.from_bytes(block[:4], "little"), int.from_bytes(block[4:], "little")
    for j in range(32):
        n1, n2 = n2 ^ plain_f((n1 + k[j % 8 if j < 24 else 7 - j % 8]) & 0xFFFFFFFF), n1
    return n2.to_bytes(4, "little") + n1.to_bytes(4, "little")  # the 32nd round does not swap


def plain_xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def plain_a(y: bytes) -> bytes:  # A(y4|y3|y2|y1) = (y1 ^ y2)|y4|y3|y2
    return y[8:32] + plain_xor(y[0:8], y[8:16])


def plain_p(y: bytes) -> bytes:  # phi(i + 1 + 4(k - 1)) = 8i + k
    return bytes(y[8 * i + k] for k in range(8) for i in range(4))


def plain_psi(y: bytes) -> bytes:  # psi(y16|...|y1) = (y1 ^ y2 ^ y3 ^ y4 ^ y13 ^ y16)|y16|...|y2
    w = [y[2 * i:2 * i + 2] for i in range(16)]
    feedback = w[0]
    for i in (1, 2, 3, 12, 15):
        feedback = plain_xor(feedback, w[i])
    return y[2:] + feedback


def plain_step(h: bytes, m: bytes) -> bytes:
    c3 = bytes.fromhex("ff00ffff000000ffff0000ff00ffff0000ff00ff00ff00ffff00ff00ff00ff00")[::-1]
    u, v = h, m
    keys = [plain_p(plain_xor(u, v))]
    for c in (bytes(32), c3, bytes(32)):
        u = plain_xor(plain_a(u), c)
        v = plain_a(plain_a(v))
        keys.append(plain_p(plain_xor(u, v)))
    s = b"".join(plain_encrypt(keys[i], h[8 * i:8 * i + 8]) for i in range(4))
    for _ in range(12):
        s = plain_psi(s)
    s = plain_xor(h, plain_psi(plain_xor(m, s)))
    for _ in range(61):
        s = plain_psi(s)
    return s


def plain_gost34311(data: bytes) -> bytes:
    h, checksum = bytes(32), 0
    for i in range(0, len(data), 32):
        block = data[i:i + 32].ljust(32, b"\0")
        h = plain_step(h, block)
        checksum += int.from_bytes(block, "little")
    h = plain_step(h, (8 * len(data)).to_bytes(32, "little"))
    return plain_step(h, (checksum % 2**256).to_bytes(32, "little"))


KNOWN_DIGESTS = {
    b"": "ce85b99cc46752fffee35cab9a7b0278abb4c2d2055cff685af4912c49490f8d",
    b"abc": "f3134348c44fb1b2a277729e2285ebb5cb5e0f29c975bc753b70497c06a4d51d",
    b"message digest": "ad4434ecb18f2c99b60cbe59ec3d2469582b65273f48de72db2fde16a4889a4d",
    b"The quick brown fox jumps over the lazy dog": "77b7fa410c9ac58a25f49bca7d0468c9296529315eaca76bd1a10f376d1f4294",
}


@pytest.mark.parametrize("message", list(KNOWN_DIGESTS))
def test_known_digests(message: bytes) -> None:
    assert gost3411.gost34311(message).hex() == KNOWN_DIGESTS[message]


@pytest.mark.parametrize("message", list(KNOWN_DIGESTS))
def test_the_plain_hash_gives_the_known_digests(message: bytes) -> None:
    assert plain_gost34311(message).hex() == KNOWN_DIGESTS[message]


@pytest.mark.parametrize("length", [1, 31, 32, 33, 63, 64, 65, 96, 1000, 10_000])
def test_hash_matches_the_plain_implementation(length: int) -> None:
    data = random.Random(length).randbytes(length)
    assert gost3411.gost34311(data) == plain_gost34311(data)


def test_hash_takes_any_bytes_like() -> None:
    data = b"The quick brown fox jumps over the lazy dog"
    assert gost3411.gost34311(bytearray(data)) == gost3411.gost34311(memoryview(data)) == gost3411.gost34311(data)


# --- the curve, against gostcrypto ----------------------------------------------------------------------------

def gostcrypto_curve(curve: gost.Curve) -> dict[str, int]:
    return {"p": curve.p, "a": curve.a, "b": curve.b, "m": curve.q, "q": curve.q, "x": curve.gx, "y": curve.gy}


def curve_of_gostcrypto(name: str) -> gost.Curve:
    c = gostsignature.CURVES_R_1323565_1_024_2019[name]
    return gost.Curve(name=name, p=c["p"], a=c["a"], b=c["b"], q=c["q"], gx=c["x"], gy=c["y"])


def test_cryptopro_a_is_tc26_256_param_set_b() -> None:
    """RFC 7836 renamed CryptoPro-A; gostcrypto carries it under its new name."""
    tc26 = curve_of_gostcrypto("id-tc26-gost-3410-2012-256-paramSetB")
    assert (CURVE.p, CURVE.a, CURVE.b, CURVE.q, CURVE.gx, CURVE.gy) == (
        tc26.p, tc26.a, tc26.b, tc26.q, tc26.gx, tc26.gy)
    assert gost.is_on_curve(CURVE, (CURVE.gx, CURVE.gy))


def big(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


# The 512-bit curves have a = -3 (set A) and a general a with cofactor 4 (set C): the code is not CryptoPro-A's.
CURVES = [
    (CURVE, gostsignature.MODE_256, 32),
    (curve_of_gostcrypto("id-tc26-gost-3410-12-512-paramSetA"), gostsignature.MODE_512, 64),
    (curve_of_gostcrypto("id-tc26-gost-3410-2012-512-paramSetC"), gostsignature.MODE_512, 64),
]


@pytest.mark.parametrize(("curve", "mode", "size"), CURVES, ids=lambda v: getattr(v, "name", str(v)))
def test_signatures_interoperate_with_gostcrypto(curve: gost.Curve, mode: int, size: int) -> None:
    rng = random.Random(curve.name)
    theirs = gostsignature.new(mode, gostcrypto_curve(curve))
    for _ in range(3):
        d, k, e = (rng.randrange(1, curve.q) for _ in range(3))
        public = gost.base_multiply(curve, d)
        assert gost.is_on_curve(curve, public)
        assert theirs.public_key_generate(big(d, size)) == big(public[0], size) + big(public[1], size)
        # The same k gives the same signature (gostcrypto writes r then s, big-endian).
        signature = theirs.sign(big(d, size), big(e, size), big(k, size))
        r, s = gost.sign(curve, d, e, k)
        assert signature == big(r, size) + big(s, size)
        r, s = gost.sign(curve, d, e)
        assert theirs.verify(big(public[0], size) + big(public[1], size), big(e, size), big(r, size) + big(s, size))
        for _ in range(3):  # a fresh key, then the key seen again (its table built), then the table used
            assert gost.verify(curve, public, e, r, s)
            assert not gost.verify(curve, public, e, r, (s + 1) % curve.q or 1)


def test_base_multiply_is_k_times_g() -> None:
    g = (CURVE.gx, CURVE.gy)
    assert gost.base_multiply(CURVE, 1) == g
    assert gost.base_multiply(CURVE, Q + 1) == g
    assert gost.base_multiply(CURVE, Q - 1) == (CURVE.gx, CURVE.p - CURVE.gy)
    with pytest.raises(ValueError):
        gost.base_multiply(CURVE, Q)


def test_sign_refuses_out_of_range_keys_and_nonces() -> None:
    for d, k in ((0, 1), (Q, 1), (1, 0), (1, Q)):
        with pytest.raises(ValueError):
            gost.sign(CURVE, d, 1, k)


@pytest.fixture(scope="module")
def signed() -> tuple[int, tuple[int, int], int, int, int]:
    rng = random.Random(1)
    d, e = rng.randrange(1, Q), rng.randrange(1, Q)
    return (d, gost.base_multiply(CURVE, d), e, *gost.sign(CURVE, d, e))


def test_verify_accepts_the_signature(signed: tuple[int, tuple[int, int], int, int, int]) -> None:
    _, public, e, r, s = signed
    assert gost.verify(CURVE, public, e, r, s)
    assert gost.verify(CURVE, list(public), e + Q, r, s)  # e is reduced here too; any 2-sequence is a point


def test_verify_refuses_changes(signed: tuple[int, tuple[int, int], int, int, int]) -> None:
    d, public, e, r, s = signed
    x, y = public
    refused = [
        (public, e + 1, r, s), (public, e, r + 1, s), (public, e, r, s + 1), (public, e, r, s - 1),
        (public, e, 0, s), (public, e, r, 0), (public, e, r, s + Q), (public, e, r + Q, s), (public, e, Q, s),
        (public, e, r, Q), (public, e, -r, s), (public, e, r, -s), (public, e, s, r),
        ((x, y + 1), e, r, s), ((x, CURVE.p - y), e, r, s), ((x + CURVE.p, y), e, r, s), ((y, x), e, r, s),
        (gost.base_multiply(CURVE, d + 1), e, r, s),
    ]
    for point, e2, r2, s2 in refused:
        assert not gost.verify(CURVE, point, e2, r2, s2), (point, e2, r2, s2)


@pytest.mark.parametrize("bad", [
    ((1, 2, 3), 1, 1, 1), ((1,), 1, 1, 1), (None, 1, 1, 1), ("xy", 1, 1, 1), ((1.0, 2.0), 1, 1, 1),
    (None, None, None, None), ((1, 2), 1, "r", 1), ((1, 2), 1, 1, 2.5), ((1, 2), b"e", 1, 1),
])
def test_verify_never_raises(bad: tuple[object, object, object, object]) -> None:
    assert gost.verify(CURVE, *bad) is False  # type: ignore[arg-type]


def test_verify_refuses_a_key_of_small_order() -> None:
    """On y^2 = x^3 + x, (0, 0) has order 2: its multiples reach infinity, which must not escape as an error."""
    p = CURVE.p  # p = 3 mod 4: square roots are one power
    x = next(x for x in range(2, 100) if pow(x**3 + x, (p - 1) // 2, p) == 1)
    toy = gost.Curve(name="toy", p=p, a=1, b=0, q=Q, gx=x, gy=pow(x**3 + x, (p + 1) // 4, p))
    assert gost.is_on_curve(toy, (0, 0))
    for _ in range(3):
        assert not gost.verify(toy, (0, 0), 5, 7, 11)


# --- the national operator's samples ------------------------------------------------------------------------

def spki_point(certificate_der: bytes) -> tuple[int, int]:
    """x and y, little-endian, from the OCTET STRING in the SubjectPublicKeyInfo's BIT STRING."""
    tbs = core.Sequence.load(x509.load_der_x509_certificate(certificate_der).tbs_certificate_bytes)
    spki = core.Sequence.load(tbs[6].dump())  # [0] version, serial, signature, issuer, validity, subject, SPKI
    assert core.Sequence.load(spki[0].dump())[0].dump() == core.ObjectIdentifier("1.2.398.3.10.1.1.1.1").dump()
    raw = core.OctetString.load(core.BitString.load(spki[1].dump()).contents[1:]).native
    assert len(raw) == 64
    return int.from_bytes(raw[:32], "little"), int.from_bytes(raw[32:], "little")


def exclusive_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def e_of(data: bytes) -> int:
    return int.from_bytes(gost3411.gost34311(data), "little") % Q or 1


def little_pair(signature: bytes) -> tuple[int, int]:
    assert len(signature) == 64
    return int.from_bytes(signature[:32], "little"), int.from_bytes(signature[32:], "little")


SAMPLE_FILES = ["nitec-sample-sync-request-gost.xml", "nitec-sample-sync-response-gost.xml"]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_a_real_sample_verifies(name: str) -> None:
    root = etree.parse(str(SAMPLES / name)).getroot()
    signed_info = exclusive_c14n(root.find(".//ds:SignedInfo", NS))
    r, s = little_pair(base64.b64decode(root.findtext(".//ds:SignatureValue", namespaces=NS)))
    public = spki_point(base64.b64decode(root.findtext(".//wsse:KeyIdentifier", namespaces=NS)))
    assert gost.is_on_curve(CURVE, public)
    assert gost.verify(CURVE, public, e_of(signed_info), r, s)
    changed = signed_info.replace(b"<ds:SignedInfo", b"<ds:SignedInfo ")
    assert changed != signed_info and not gost.verify(CURVE, public, e_of(changed), r, s)
    one_byte = bytearray(signed_info)
    one_byte[len(one_byte) // 2] ^= 1
    assert not gost.verify(CURVE, public, e_of(bytes(one_byte)), r, s)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_a_real_sample_digest(name: str) -> None:
    root = etree.parse(str(SAMPLES / name)).getroot()
    digest = base64.b64decode(root.findtext(".//ds:DigestValue", namespaces=NS))
    assert gost3411.gost34311(exclusive_c14n(root.find("S:Body", NS))) == digest


def test_the_sample_certificate_is_signed_by_the_nca_gost_ca() -> None:
    """gost.md: a certificate's signature over its TBSCertificate follows the XML signatures' conventions."""
    root = etree.parse(str(SAMPLES / SAMPLE_FILES[0])).getroot()
    der = base64.b64decode(root.findtext(".//wsse:KeyIdentifier", namespaces=NS))
    certificate = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate(NCA_GOST_CA.read_bytes())
    ca_key = spki_point(ca.public_bytes(Encoding.DER))
    r, s = little_pair(certificate.signature)
    assert gost.verify(CURVE, ca_key, e_of(certificate.tbs_certificate_bytes), r, s)
    assert not gost.verify(CURVE, ca_key, e_of(certificate.tbs_certificate_bytes + b"\0"), r, s)
