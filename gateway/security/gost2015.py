"""GOST 34.10-2015 (512-bit) signatures as the Kazakh National CA (NCA RK) makes them.

Every convention below was established by verifying real NCA material (the test CA "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ
(GOST) TEST 2022", its CRL, its OCSP responder certificate and two OCSP responses) against all 64 combinations of
hash (Streebog-512/-256), digest byte order, e's endianness, r/s order and r/s endianness; exactly one distinct
combination verifies, and it is the 2004 one of gost.md carried over to 512 bits:

* public key: SubjectPublicKeyInfo algorithm ``1.2.398.3.10.1.1.2.2`` with parameters SEQUENCE { curve
  ``1.2.398.3.10.1.1.2.2.1``, hash ``1.2.398.3.10.1.3.3`` }; BIT STRING holding an OCTET STRING of 128 bytes,
  x (64 bytes little-endian) then y (64 bytes little-endian). Only under that reading is the point on a curve, and
  the curve is TC26 id-tc26-gost-3410-12-512-paramSetA (RFC 7836, OID 1.2.643.7.1.2.1.2.1);
* hash: Streebog-512, with the digest bytes as gostcrypto / OpenSSL gost-engine output them;
* e = (digest read as a little-endian integer) mod q, 1 if that is 0;
* signature (128 bytes, as in the X.509 BIT STRING): r as 64 bytes little-endian, then s as 64 bytes little-endian.

Streebog is gostcrypto's; the curve arithmetic is :mod:`gateway.security.gost`'s (the same code as for 2004 keys,
about a thousand times faster than gostcrypto's affine arithmetic), checked against gostcrypto in the tests.
"""
from __future__ import annotations

import functools

from asn1crypto import core
from gostcrypto import gosthash
from gostcrypto.gostsignature import gost_34_10_2012 as _g

from gateway.security import gost

# Signature algorithm of certificates, CRLs and OCSP responses signed with a 512-bit GOST 2015 key.
OID_SIGNATURE_2015_512 = "1.2.398.3.10.1.1.2.3.2"
# The 256-bit variant (1.2.398.3.10.1.1.2.3.1) is named by NCA but no material signed with it was available: it is
# not supported, rather than guessed.
# SubjectPublicKeyInfo algorithm of GOST 2015 keys, and the parameters seen in every such SPKI.
OID_PUBLIC_KEY_2015 = "1.2.398.3.10.1.1.2.2"
OID_CURVE_2015_512_A = "1.2.398.3.10.1.1.2.2.1"  # = TC26 512-bit paramSetA (verified, see module docstring)
OID_HASH_2015_512 = "1.2.398.3.10.1.3.3"  # NCA's name for Streebog-512 in the SPKI parameters

# XML-DSig URIs NCA uses for these keys (gost.md, shep-wire.md).
XMLDSIG_SIGNATURE_2015_512 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512"
XMLDSIG_DIGEST_2015_512 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512"


_SIZE = 64  # bytes per coordinate, per half of a signature and per digest

# NCA curve OID -> gostcrypto's name for the same curve. Only curves confirmed by a verified signature belong here.
_GOSTCRYPTO_NAMES: dict[str, str] = {OID_CURVE_2015_512_A: "id-tc26-gost-3410-12-512-paramSetA"}


def _plain(name: str) -> dict[str, int]:
    c = _g.CURVES_R_1323565_1_024_2019[name]
    # paramSetA is given in short Weierstrass form with cofactor 1, so gostcrypto's x, y are the base point.
    return {"p": c["p"], "a": c["a"], "b": c["b"], "q": c["q"], "gx": c["x"], "gy": c["y"]}


# curve OID -> {'p','a','b','q','gx','gy'}: y^2 = x^3 + a*x + b (mod p), base point (gx, gy) of prime order q.
CURVES_2015: dict[str, dict[str, int]] = {oid: _plain(name) for oid, name in _GOSTCRYPTO_NAMES.items()}


class _AlgParams(core.Sequence):
    _fields = [("curve", core.ObjectIdentifier), ("hash", core.ObjectIdentifier, {"optional": True})]


class _Algorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", _AlgParams)]


class _Spki(core.Sequence):
    # asn1crypto's own PublicKeyInfo raises on the unknown GOST algorithm, hence this minimal schema.
    _fields = [("algorithm", _Algorithm), ("public_key", core.OctetBitString)]


@functools.lru_cache(maxsize=None)
def _curve(curve_oid: str) -> gost.Curve:
    """The curve an NCA curve OID names, for :mod:`gateway.security.gost`'s arithmetic."""
    if curve_oid not in CURVES_2015:
        raise ValueError(f"unsupported GOST 2015 curve {curve_oid}")
    return gost.Curve(name=_GOSTCRYPTO_NAMES[curve_oid], **CURVES_2015[curve_oid])


def _e(data: bytes, q: int) -> int:
    """e: the Streebog-512 digest read little-endian, mod q, never 0."""
    return int.from_bytes(streebog512(data), "little") % q or 1


def streebog512(data: bytes) -> bytes:
    """Streebog-512 (GOST R 34.11-2012) of ``data``, bytes in the order gostcrypto and OpenSSL's gost-engine give.

    That is the order in which NCA's e is formed (e = this digest read little-endian): verified on the CRL, the
    responder certificate and both OCSP responses. For an XML ``DigestValue`` no GOST 2015 sample was available; we
    assume the same order, as holds for NCA's 2004 signatures (gost.md: the same digest bytes give DigestValue and e).
    """
    return bytes(gosthash.new("streebog512", data=data).digest())


def public_point_2015(spki_der: bytes) -> tuple[str, tuple[int, int]]:
    """Curve parameter OID and public point (x, y) from a GOST 2015 SubjectPublicKeyInfo (DER).

    Raises ValueError for another algorithm, an unknown curve, a malformed key or a point not on the curve.
    """
    try:
        spki = _Spki.load(spki_der, strict=True)
        algorithm = spki["algorithm"]["algorithm"].dotted
        curve_oid = spki["algorithm"]["parameters"]["curve"].dotted
        hash_param = spki["algorithm"]["parameters"]["hash"]
        hash_oid = None if isinstance(hash_param, core.Void) else hash_param.dotted
        key = core.OctetString.load(spki["public_key"].native, strict=True).native
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a GOST 2015 SubjectPublicKeyInfo: {exc}") from exc
    if algorithm != OID_PUBLIC_KEY_2015:
        raise ValueError(f"public key algorithm {algorithm} is not GOST 2015")
    curve = CURVES_2015.get(curve_oid)
    if curve is None:
        raise ValueError(f"unsupported GOST 2015 curve {curve_oid}")
    if hash_oid not in (None, OID_HASH_2015_512):  # we always hash with Streebog-512
        raise ValueError(f"unsupported GOST 2015 hash parameter {hash_oid}")
    # asn1crypto skips unexpected elements; accept only the one DER encoding of what was read.
    if _encode_spki(curve_oid, hash_oid, key) != spki_der:
        raise ValueError("GOST 2015 SubjectPublicKeyInfo is not in canonical DER")
    if len(key) != 2 * _SIZE:
        raise ValueError(f"GOST 2015 512-bit public key must be {2 * _SIZE} bytes, got {len(key)}")
    # x then y, each little-endian (big-endian readings are not on any curve).
    x, y = int.from_bytes(key[:_SIZE], "little"), int.from_bytes(key[_SIZE:], "little")
    p = curve["p"]
    # gostcrypto does not check the point; an off-curve key must never be "verified" against.
    if not (0 <= x < p and 0 <= y < p) or (y * y - x * x * x - curve["a"] * x - curve["b"]) % p:
        raise ValueError("GOST 2015 public key is not a point on its curve")
    return curve_oid, (x, y)


def verify_2015(spki_der: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (128 bytes: r LE ‖ s LE, as in X.509) is a GOST 2015 signature of ``data``.

    ``data`` is the signed bytes themselves (TBSCertificate, TBSCertList, ResponseData DER ...), hashed here with
    Streebog-512. Malformed keys and signatures give False, not an exception.
    """
    try:
        curve_oid, (x, y) = public_point_2015(spki_der)
    except ValueError:
        return False
    if len(signature) != 2 * _SIZE:
        return False
    r = int.from_bytes(signature[:_SIZE], "little")
    s = int.from_bytes(signature[_SIZE:], "little")
    curve = _curve(curve_oid)
    return gost.verify(curve, (x, y), _e(data, curve.q), r, s)


def public_key_2015(curve_oid: str, d: int) -> tuple[int, int]:
    """The public point d·G for private key ``d`` on the curve ``curve_oid``."""
    _check_private(curve_oid, d)
    return gost.base_multiply(_curve(curve_oid), d)


def spki_2015(curve_oid: str, point: tuple[int, int]) -> bytes:
    """A SubjectPublicKeyInfo DER in NCA's layout for ``point`` (inverse of :func:`public_point_2015`)."""
    if curve_oid not in CURVES_2015:
        raise ValueError(f"unsupported GOST 2015 curve {curve_oid}")
    key = point[0].to_bytes(_SIZE, "little") + point[1].to_bytes(_SIZE, "little")
    return _encode_spki(curve_oid, OID_HASH_2015_512, key)


def _encode_spki(curve_oid: str, hash_oid: str | None, key: bytes) -> bytes:
    params = {"curve": curve_oid} if hash_oid is None else {"curve": curve_oid, "hash": hash_oid}
    return _Spki({
        "algorithm": {"algorithm": OID_PUBLIC_KEY_2015, "parameters": params},
        "public_key": core.OctetString(key).dump(),
    }).dump()


def _check_private(curve_oid: str, d: int) -> None:
    curve = CURVES_2015.get(curve_oid)
    if curve is None:
        raise ValueError(f"unsupported GOST 2015 curve {curve_oid}")
    if not 0 < d < curve["q"]:
        raise ValueError("GOST 2015 private key must be in 1..q-1")


def sign_2015(curve_oid: str, d: int, data: bytes) -> bytes:
    """A GOST 2015 signature of ``data`` by private key ``d``, in the X.509 layout (r LE ‖ s LE, 128 bytes).

    Assumption (no signed GOST 2015 XML sample was available): an XML ``SignatureValue`` uses this same layout,
    as NCA's 2004 XML signatures use the same layout as their certificate signatures (gost.md, point 5).
    """
    _check_private(curve_oid, d)
    curve = _curve(curve_oid)
    r, s = gost.sign(curve, d, _e(data, curve.q))
    return r.to_bytes(_SIZE, "little") + s.to_bytes(_SIZE, "little")
