"""XML-DSig for the one shape transport signatures take (shep-wire.md §3.1): one Reference to one element, exclusive
c14n with an optional ``InclusiveNamespaces PrefixList``, SHA-1 or SHA-256 digests, RSA PKCS#1 v1.5 or ECDSA
signature values. libxml2's canonicaliser (through lxml) and ``cryptography`` do the work.

Why not xmlsec: on this shape it spent about 0.6 ms of CPU to verify what costs 0.03 ms of RSA, and 0.3–0.6 ms
over the private-key operation to sign (templates, key duplication, Id registration, its own transform
pipeline). The gateway checks the signature's shape itself anyway (:mod:`gateway.security.wssec`), so the general
machinery bought nothing. xmlsec and signxml verify the gateway's own signatures in the tests.

:data:`SIGNATURE_ALGORITHMS` is the extension point: a GOST provider adds its URIs with a
:class:`SignatureAlgorithm` whose ``verify``/``sign`` call that provider.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A ``SignatureMethod``: the key kind it needs and how its ``SignatureValue`` is made and checked."""

    hash: hashes.HashAlgorithm
    key_type: type

    def verify(self, public_key: object, value: bytes, signed: bytes) -> bool:
        """Whether ``value`` is a signature of ``signed`` by ``public_key`` (False for a key of another kind)."""
        if not isinstance(public_key, self.key_type):
            return False
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(value, signed, padding.PKCS1v15(), self.hash)
            else:
                public_key.verify(_der_from_xmldsig(value), signed, ec.ECDSA(self.hash))
        except (InvalidSignature, ValueError):
            return False
        return True

    def sign(self, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, signed: bytes) -> bytes:
        """The ``SignatureValue`` bytes of ``signed``."""
        if isinstance(private_key, rsa.RSAPrivateKey):
            return private_key.sign(signed, padding.PKCS1v15(), self.hash)
        r, s = decode_dss_signature(private_key.sign(signed, ec.ECDSA(self.hash)))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _der_from_xmldsig(value: bytes) -> bytes:
    """XML-DSig writes an ECDSA signature as r and s of equal length side by side (RFC 4050 §3.3); cryptography
    takes DER."""
    if not value or len(value) % 2:
        raise ValueError("an ECDSA SignatureValue holds two halves of equal length")
    half = len(value) // 2
    return encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))


# Accepted SignatureMethod and DigestMethod URIs (shep-wire.md §3.3).
SIGNATURE_ALGORITHMS: dict[str, SignatureAlgorithm] = {
    RSA_SHA256: SignatureAlgorithm(hashes.SHA256(), rsa.RSAPublicKey),
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": SignatureAlgorithm(hashes.SHA1(), rsa.RSAPublicKey),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha1": SignatureAlgorithm(hashes.SHA1(), rsa.RSAPublicKey),
    ECDSA_SHA256: SignatureAlgorithm(hashes.SHA256(), ec.EllipticCurvePublicKey),
}
DIGEST_ALGORITHMS: dict[str, str] = {  # URI -> hashlib name
    SHA256: "sha256",
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha1": "sha1",
}


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
    return hashlib.new(DIGEST_ALGORITHMS[algorithm], data).digest()


def digest_matches(data: bytes, algorithm: str, expected: bytes) -> bool:
    """Whether ``data`` has the digest ``expected`` (compared in constant time)."""
    return hmac.compare_digest(digest(data, algorithm), expected)
