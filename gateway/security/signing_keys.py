"""Reading a signing key: RSA and ECDSA through ``cryptography``; GOST keys (NCA's PKCS#12, or PKCS#8 in PEM)
through :mod:`gateway.security.nca_pkcs12`, since ``cryptography`` refuses their algorithm."""
from __future__ import annotations

import base64
import re

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.security import gost2015
from gateway.security.nca_pkcs12 import gost_private_scalar, read_pkcs12
from gateway.security.public_keys import (
    GOST2004_KEY, GOST2015_KEY, AlgorithmIdentifier, Gost2015PrivateKey, Gost2015PublicKey, GostParameters, GostPrivateKey,
    public_key_of,
)
from gateway.security.xmldsig import SigningKey

_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN PRIVATE KEY-----(.+?)-----END PRIVATE KEY-----", re.DOTALL)


class _PrivateKeyInfo(core.Sequence):
    _fields = [("version", core.Integer), ("algorithm", AlgorithmIdentifier), ("private_key", core.OctetString)]


def gost_private_key(private_key_info: bytes) -> GostPrivateKey | Gost2015PrivateKey:
    """A GOST key from its PKCS#8 PrivateKeyInfo (algorithm 2004 or 2015, the curve in its parameters)."""
    algorithm = _PrivateKeyInfo.load(private_key_info)["algorithm"]
    oid = algorithm["algorithm"].dotted
    d = gost_private_scalar(private_key_info)
    if oid == GOST2004_KEY:
        return GostPrivateKey(d)
    if oid == GOST2015_KEY:
        return Gost2015PrivateKey(GostParameters.load(algorithm["parameters"].dump())["curve"].dotted, d)
    raise ValueError(f"key algorithm {oid} is not GOST")


def load_signing_key(data: bytes, password: str | None) -> SigningKey:
    """A PEM private key: RSA or ECDSA (encrypted or not), or an unencrypted GOST PKCS#8."""
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except UnsupportedAlgorithm:
        match = _PEM_PRIVATE_KEY.search(data)
        if match is None:
            raise ValueError("a GOST key in PEM must be an unencrypted PKCS#8 PRIVATE KEY; use PKCS#12 to encrypt it") from None
        return gost_private_key(base64.b64decode(b"".join(match.group(1).split())))
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("the signing key must be RSA, ECDSA or GOST")
    return key


def load_pkcs12(data: bytes, password: str | None) -> tuple[SigningKey, x509.Certificate]:
    """The key and its certificate from a PKCS#12 file; NCA's GOST files are read here, others by
    ``cryptography``. ValueError when the key and the certificate do not belong together."""
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, UnsupportedAlgorithm):
        # NCA's files: GOST keys, and certificates under 40-bit RC2, which OpenSSL 3 keeps in its legacy provider.
        contents = read_pkcs12(data, password or "")
        key = _private_key(contents.private_key_info)
        certificate = next((c for c in contents.certificates if _belong_together(key, c)), None)
    if key is None or certificate is None:
        raise ValueError("the PKCS#12 file holds no key and certificate")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, GostPrivateKey, Gost2015PrivateKey)):
        raise ValueError("the signing key must be RSA, ECDSA or GOST")
    return key, certificate


def _private_key(private_key_info: bytes) -> object:
    algorithm = _PrivateKeyInfo.load(private_key_info)["algorithm"]["algorithm"].dotted
    if algorithm in (GOST2004_KEY, GOST2015_KEY):
        return gost_private_key(private_key_info)
    return serialization.load_der_private_key(private_key_info, None)


def _belong_together(key: object, certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` carries ``key``'s public half."""
    try:
        public = public_key_of(certificate)
    except ValueError:
        return False
    if isinstance(key, Gost2015PrivateKey):
        return isinstance(public, Gost2015PublicKey) and (
            gost2015.public_point_2015(public.spki_der)[1] == gost2015.public_key_2015(key.curve_oid, key.d)
        )
    return public == key.public_key() if isinstance(key, (GostPrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)) else False
