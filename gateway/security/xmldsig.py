"""XML-DSig for the one shape transport signatures take (shep-wire.md §3.1): one Reference to one element, exclusive
c14n with an optional ``InclusiveNamespaces PrefixList``, SHA-1 or SHA-256 digests, RSA PKCS#1 v1.5 or ECDSA
signature values, and NCA's GOST 34.310 (2004 and 2015). libxml2's canonicaliser (through lxml), ``cryptography``
and the gateway's own GOST code (:mod:`gateway.security.public_keys`) do the work.

Why not xmlsec: on this shape it spent about 0.6 ms of CPU to verify what costs 0.03 ms of RSA, and 0.3–0.6 ms
over the private-key operation to sign (templates, key duplication, Id registration, its own transform
pipeline). The gateway checks the signature's shape itself anyway (:mod:`gateway.security.wssec`), so the general
machinery bought nothing. xmlsec and signxml verify the gateway's own signatures in the tests.

:data:`SIGNATURE_ALGORITHMS`, :data:`DIGEST_ALGORITHMS` and :data:`SIGNING_METHODS` are the one place where the
accepted and used algorithms are listed.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from gateway.security import gost2015, gost3411
from gateway.security.public_keys import Gost2015PrivateKey, Gost2015PublicKey, GostPrivateKey, GostPublicKey

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA1_MORE = "http://www.w3.org/2001/04/xmldsig-more#sha1"
GOST2004 = "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"
GOST2004_DIGEST = "http://www.w3.org/2001/04/xmldsig-more#gost34311"
GOST2015 = gost2015.XMLDSIG_SIGNATURE_2015_512
GOST2015_DIGEST = gost2015.XMLDSIG_DIGEST_2015_512


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A ``SignatureMethod``: the key kind it needs and how its ``SignatureValue`` is made and checked. ``hash`` is
    None for GOST, whose keys hash with their own algorithm (:mod:`gateway.security.public_keys`)."""

    key_type: type
    digests: frozenset[str]  # the DigestMethods that may go with it: a GOST digest is costly, and only for GOST
    hash: hashes.HashAlgorithm | None = None

    def verify(self, public_key: object, value: bytes, signed: bytes) -> bool:
        """Whether ``value`` is a signature of ``signed`` by ``public_key`` (False for a key of another kind)."""
        if not isinstance(public_key, self.key_type):
            return False
        if isinstance(public_key, (GostPublicKey, Gost2015PublicKey)):
            return public_key.verify(value, signed)
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(value, signed, padding.PKCS1v15(), self.hash)
            else:
                public_key.verify(_der_from_xmldsig(value), signed, ec.ECDSA(self.hash))
        except (InvalidSignature, ValueError):
            return False
        return True

    def sign(self, private_key: SigningKey, signed: bytes) -> bytes:
        """The ``SignatureValue`` bytes of ``signed``."""
        if isinstance(private_key, (GostPrivateKey, Gost2015PrivateKey)):
            return private_key.sign(signed)
        if isinstance(private_key, rsa.RSAPrivateKey):
            return private_key.sign(signed, padding.PKCS1v15(), self.hash)
        r, s = decode_dss_signature(private_key.sign(signed, ec.ECDSA(self.hash)))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | GostPrivateKey | Gost2015PrivateKey


def _der_from_xmldsig(value: bytes) -> bytes:
    """XML-DSig writes an ECDSA signature as r and s of equal length side by side (RFC 4050 §3.3); cryptography
    takes DER."""
    if not value or len(value) % 2:
        raise ValueError("an ECDSA SignatureValue holds two halves of equal length")
    half = len(value) // 2
    return encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))


# Accepted SignatureMethod and DigestMethod URIs (shep-wire.md §3.3, gost.md).
_SHA_DIGESTS = frozenset({SHA256, SHA1, SHA1_MORE})
SIGNATURE_ALGORITHMS: dict[str, SignatureAlgorithm] = {
    RSA_SHA256: SignatureAlgorithm(rsa.RSAPublicKey, _SHA_DIGESTS, hashes.SHA256()),
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": SignatureAlgorithm(rsa.RSAPublicKey, _SHA_DIGESTS, hashes.SHA1()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha1": SignatureAlgorithm(rsa.RSAPublicKey, _SHA_DIGESTS, hashes.SHA1()),
    ECDSA_SHA256: SignatureAlgorithm(ec.EllipticCurvePublicKey, _SHA_DIGESTS, hashes.SHA256()),
    GOST2004: SignatureAlgorithm(GostPublicKey, frozenset({GOST2004_DIGEST})),
    GOST2015: SignatureAlgorithm(Gost2015PublicKey, frozenset({GOST2015_DIGEST})),
}
DIGEST_ALGORITHMS: dict[str, Callable[[bytes], bytes]] = {
    SHA256: lambda data: hashlib.sha256(data).digest(),
    SHA1: lambda data: hashlib.sha1(data).digest(),  # noqa: S324 - WS-Security 1.0 clients
    SHA1_MORE: lambda data: hashlib.sha1(data).digest(),  # noqa: S324
    GOST2004_DIGEST: gost3411.gost34311,
    GOST2015_DIGEST: gost2015.streebog512,
}
# What the gateway signs with, by the kind of its key: (SignatureMethod, DigestMethod).
SIGNING_METHODS: dict[type, tuple[str, str]] = {
    rsa.RSAPrivateKey: (RSA_SHA256, SHA256),
    ec.EllipticCurvePrivateKey: (ECDSA_SHA256, SHA256),
    GostPrivateKey: (GOST2004, GOST2004_DIGEST),
    Gost2015PrivateKey: (GOST2015, GOST2015_DIGEST),
}


def signing_methods(key: SigningKey) -> tuple[str, str]:
    """The SignatureMethod and DigestMethod URIs the gateway uses with ``key``."""
    return next(methods for key_type, methods in SIGNING_METHODS.items() if isinstance(key, key_type))


def prefix_list(c14n_method: etree._Element) -> list[str]:
    """The prefixes an exclusive-c14n method element names in its ``InclusiveNamespaces PrefixList``."""
    inclusive = c14n_method.find(f"{{{EXC_C14N}}}InclusiveNamespaces")
    return (inclusive.get("PrefixList") or "").split() if inclusive is not None else []


def canonical(element: etree._Element, inclusive_prefixes: list[str]) -> bytes:
    """Exclusive c14n without comments of ``element`` in its document, as a same-document reference sees it."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=inclusive_prefixes or None)


def digest(data: bytes, algorithm: str) -> bytes:
    """The digest of ``data`` by a :data:`DIGEST_ALGORITHMS` URI."""
    return DIGEST_ALGORITHMS[algorithm](data)


def digest_matches(data: bytes, algorithm: str, expected: bytes) -> bool:
    """Whether ``data`` has the digest ``expected`` (compared in constant time)."""
    return hmac.compare_digest(digest(data, algorithm), expected)
