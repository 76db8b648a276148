"""The public keys of certificates, whatever their algorithm: RSA and ECDSA through ``cryptography``, GOST 34.310
(2004, 256-bit; 2015, 512-bit) through the gateway's own GOST code, since ``cryptography`` parses a GOST
certificate but refuses its key.

NCA writes GOST numbers little-endian everywhere (gost.md, "Byte conventions"): the key is x then y, the signature
r then s, and the hash is read as a little-endian integer. :class:`GostPublicKey` and :class:`GostPrivateKey`
apply those conventions once, so XML signatures, certificates, CRLs and OCSP responses are all checked alike by
:func:`verify_signed_data`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gateway.security import gost, gost2015, gost3411

GOST2004_KEY = "1.2.398.3.10.1.1.1.1"
GOST2004_SIGNATURE = "1.2.398.3.10.1.1.1.2"
GOST2015_KEY = gost2015.OID_PUBLIC_KEY_2015
GOST2015_SIGNATURE = gost2015.OID_SIGNATURE_2015_512
GOST_SIGNATURES = frozenset({GOST2004_SIGNATURE, GOST2015_SIGNATURE})
_KEY_SIZE = 32  # bytes of one GOST 2004 coordinate


def _little(value: bytes) -> int:
    return int.from_bytes(value, "little")


def _e(digest: bytes, q: int) -> int:
    """GOST 34.10's e: the digest read little-endian (the NCA convention), reduced mod q, and never 0."""
    return _little(digest) % q or 1


@dataclass(frozen=True)
class GostPublicKey:
    """A GOST 34.310-2004 public key on the CryptoPro-A curve, with NCA's byte conventions."""

    point: tuple[int, int]
    curve: gost.Curve = gost.CRYPTOPRO_A

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` (r then s, 32 bytes each, little-endian) signs ``data`` (hashed here)."""
        if len(signature) != 2 * _KEY_SIZE:
            return False
        r, s = _little(signature[:_KEY_SIZE]), _little(signature[_KEY_SIZE:])
        return gost.verify(self.curve, self.point, _e(gost3411.gost34311(data), self.curve.q), r, s)

    def spki_point_bytes(self) -> bytes:
        """The key as a certificate carries it: x then y, little-endian."""
        x, y = self.point
        return x.to_bytes(_KEY_SIZE, "little") + y.to_bytes(_KEY_SIZE, "little")


@dataclass(frozen=True)
class Gost2015PublicKey:
    """A GOST 34.10-2015 (512-bit) public key; the arithmetic and conventions are :mod:`gateway.security.gost2015`'s."""

    spki_der: bytes

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` signs ``data`` (hashed here)."""
        return gost2015.verify_2015(self.spki_der, data, signature)


@dataclass(frozen=True)
class GostPrivateKey:
    """A GOST 34.310-2004 private key (the scalar d) on the CryptoPro-A curve."""

    d: int
    curve: gost.Curve = gost.CRYPTOPRO_A

    def public_key(self) -> GostPublicKey:
        """The matching public key (d·G)."""
        return GostPublicKey(gost.base_multiply(self.curve, self.d), self.curve)

    def sign(self, data: bytes) -> bytes:
        """A signature of ``data`` in NCA's layout: r then s, 32 bytes each, little-endian."""
        r, s = gost.sign(self.curve, self.d, _e(gost3411.gost34311(data), self.curve.q))
        return r.to_bytes(_KEY_SIZE, "little") + s.to_bytes(_KEY_SIZE, "little")


@dataclass(frozen=True)
class Gost2015PrivateKey:
    """A GOST 34.10-2015 (512-bit) private key: the scalar d on the curve ``curve_oid`` names."""

    curve_oid: str
    d: int

    def sign(self, data: bytes) -> bytes:
        """A signature of ``data`` in NCA's 2015 layout (:mod:`gateway.security.gost2015`)."""
        return gost2015.sign_2015(self.curve_oid, self.d, data)


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | GostPublicKey | Gost2015PublicKey


class AlgorithmIdentifier(core.Sequence):
    """An AlgorithmIdentifier whose parameters stay unparsed (asn1crypto's own raises on GOST OIDs)."""

    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class SubjectPublicKeyInfo(core.Sequence):
    """A SubjectPublicKeyInfo of any algorithm, its key bits unparsed."""

    _fields = [("algorithm", AlgorithmIdentifier), ("public_key", core.OctetBitString)]


class GostParameters(core.Sequence):
    """The parameters of NCA's GOST key algorithms: the curve and the hash."""

    _fields = [("curve", core.ObjectIdentifier), ("hash", core.ObjectIdentifier, {"optional": True})]


GOST2004_CURVE = "1.2.398.3.10.1.1.1.1.1"  # CryptoPro-A, as NCA names it
GOST2004_HASH = "1.2.398.3.10.1.3.1.1.0"  # GOST 34.311 with the test S-box


def subject_public_key_info(certificate: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo DER of ``certificate`` (cryptography would parse the key, and refuses GOST;
    asn1crypto parses lazily, so dumping the field never reads the key)."""
    return asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)["subject_public_key_info"].dump()


def gost_public_key(spki_der: bytes) -> GostPublicKey:
    """A GOST 2004 key from its SubjectPublicKeyInfo: the BIT STRING holds an OCTET STRING of x and y, little-endian
    (read big-endian the point is not on the curve)."""
    spki = SubjectPublicKeyInfo.load(spki_der, strict=True)
    curve = GostParameters.load(spki["algorithm"]["parameters"].dump(), strict=True)["curve"].dotted
    if curve != GOST2004_CURVE:
        raise ValueError(f"GOST 34.310-2004 curve {curve} is not supported")
    raw = core.OctetString.load(spki["public_key"].native, strict=True).native
    if len(raw) != 2 * _KEY_SIZE:
        raise ValueError("a GOST 34.310-2004 key is 64 bytes")
    point = (_little(raw[:_KEY_SIZE]), _little(raw[_KEY_SIZE:]))
    if not gost.is_on_curve(gost.CRYPTOPRO_A, point):
        raise ValueError("the GOST key is not a point of the curve")
    return GostPublicKey(point)


@functools.lru_cache(maxsize=1024)
def public_key_of(certificate: x509.Certificate) -> PublicKey:
    """The key of ``certificate``, parsed once (callers send the same few certificates with every message);
    ValueError for a key of no algorithm the gateway knows."""
    try:
        key = certificate.public_key()
    except UnsupportedAlgorithm:
        return _gost_key_of(certificate)
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError(f"the certificate's {type(key).__name__} is not supported")
    return key


def _gost_key_of(certificate: x509.Certificate) -> GostPublicKey | Gost2015PublicKey:
    """The GOST key ``cryptography`` would not read; ValueError, in words a caller can act on, for anything else or
    anything malformed (certificates come from callers)."""
    try:
        spki = subject_public_key_info(certificate)
        algorithm = SubjectPublicKeyInfo.load(spki)["algorithm"]["algorithm"].dotted
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("the certificate's public key cannot be read") from exc
    readers: dict[str, Callable[[bytes], GostPublicKey | Gost2015PublicKey]] = {
        GOST2004_KEY: gost_public_key, GOST2015_KEY: _gost2015_public_key,
    }
    if algorithm not in readers:
        raise ValueError(f"the certificate's key algorithm {algorithm} is not supported")
    try:
        return readers[algorithm](spki)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"the certificate's GOST key cannot be read ({str(exc)[:120]})") from exc


def _gost2015_public_key(spki_der: bytes) -> Gost2015PublicKey:
    gost2015.public_point_2015(spki_der)  # raises for a malformed key, an unknown curve or a point off the curve
    return Gost2015PublicKey(spki_der)


def is_gost(certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` carries a GOST key (2004 or 2015)."""
    return isinstance(public_key_of(certificate), (GostPublicKey, Gost2015PublicKey))


# X.509 signature algorithms of RSA and ECDSA: the key kind each needs and its hash.
_INTERNATIONAL: dict[str, tuple[type, hashes.HashAlgorithm]] = {
    "1.2.840.113549.1.1.11": (rsa.RSAPublicKey, hashes.SHA256()),
    "1.2.840.113549.1.1.12": (rsa.RSAPublicKey, hashes.SHA384()),
    "1.2.840.113549.1.1.13": (rsa.RSAPublicKey, hashes.SHA512()),
    "1.2.840.113549.1.1.5": (rsa.RSAPublicKey, hashes.SHA1()),
    "1.2.840.10045.4.3.2": (ec.EllipticCurvePublicKey, hashes.SHA256()),
    "1.2.840.10045.4.3.3": (ec.EllipticCurvePublicKey, hashes.SHA384()),
    "1.2.840.10045.4.3.4": (ec.EllipticCurvePublicKey, hashes.SHA512()),
}
_GOST: dict[str, type] = {GOST2004_SIGNATURE: GostPublicKey, GOST2015_SIGNATURE: Gost2015PublicKey}


def verify_signed_data(signer: x509.Certificate, algorithm_oid: str, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` by ``signer``'s key over ``data`` holds under the X.509 signature algorithm
    ``algorithm_oid`` (a certificate's, CRL's or OCSP response's); False for an unknown algorithm or a key of
    another kind."""
    try:
        key = public_key_of(signer)
    except ValueError:
        return False
    if algorithm_oid in _GOST:
        return isinstance(key, _GOST[algorithm_oid]) and key.verify(signature, data)
    key_type, hash_algorithm = _INTERNATIONAL.get(algorithm_oid, (type(None), hashes.SHA256()))
    if not isinstance(key, key_type):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        else:
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
    except (InvalidSignature, ValueError):
        return False
    return True


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name is ``certificate``'s issuer and its key signed ``certificate``: GOST here,
    anything else by ``cryptography`` (which knows RSA-PSS and the rest)."""
    return certificate.issuer == issuer.subject and signed_by(
        issuer, certificate.signature_algorithm_oid.dotted_string, certificate.signature,
        certificate.tbs_certificate_bytes, lambda: certificate.verify_directly_issued_by(issuer),
    )


def signed_by(
    issuer: x509.Certificate, algorithm_oid: str, signature: bytes, data: bytes, by_cryptography: Callable[[], object],
) -> bool:
    """Whether ``issuer`` made ``signature`` over ``data`` (a certificate's or CRL's): GOST here, anything else by
    ``by_cryptography``, which knows RSA-PSS and the rest, and raises or returns False when the signature fails."""
    if algorithm_oid in GOST_SIGNATURES:
        return verify_signed_data(issuer, algorithm_oid, signature, data)
    try:
        return by_cryptography() is not False
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
