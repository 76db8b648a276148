"""GOST certificates and CRLs for a test PKI shaped like NCA's (never for the message path). ``cryptography`` can
neither embed a GOST key in a certificate nor sign with one, so the DER is built here with asn1crypto and signed
with the gateway's own GOST code, in NCA's layout: the SPKI and signature algorithm OIDs, parameters and byte
orders of gost.md (2004) and :mod:`gateway.security.gost2015` (2015), as NCA's real certificates carry them."""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from gateway.security import gost, gost2015
from gateway.security.nca_pkcs12 import gost_private_key_info, write_pkcs12
from gateway.security.pki import participant_name
from gateway.security.public_keys import (
    GOST2004_CURVE, GOST2004_HASH, GOST2004_KEY, GOST2004_SIGNATURE, GOST2015_KEY, GOST2015_SIGNATURE, GostParameters,
    Gost2015PrivateKey, GostPrivateKey, SubjectPublicKeyInfo,
)

GOST_ALGORITHMS = ("gost2004", "gost2015")  # the values new_key takes
GostKey = GostPrivateKey | Gost2015PrivateKey


def _parameters(key: GostKey) -> bytes:
    if isinstance(key, GostPrivateKey):
        return GostParameters({"curve": GOST2004_CURVE, "hash": GOST2004_HASH}).dump()
    return GostParameters({"curve": key.curve_oid, "hash": gost2015.OID_HASH_2015_512}).dump()


def new_key(algorithm: str) -> GostKey:
    """A fresh GOST key: ``gost2004`` (256-bit, CryptoPro-A) or ``gost2015`` (512-bit, TC26 paramSetA)."""
    if algorithm == "gost2004":
        return GostPrivateKey(1 + secrets.randbelow(gost.CRYPTOPRO_A.q - 1))
    curve = gost2015.OID_CURVE_2015_512_A
    return Gost2015PrivateKey(curve, 1 + secrets.randbelow(gost2015.CURVES_2015[curve]["q"] - 1))


def subject_public_key_info(key: GostKey) -> bytes:
    """The SPKI DER of ``key``'s public half, as NCA writes it (x then y, little-endian, in an OCTET STRING)."""
    if isinstance(key, Gost2015PrivateKey):
        return gost2015.spki_2015(key.curve_oid, gost2015.public_key_2015(key.curve_oid, key.d))
    return SubjectPublicKeyInfo({
        "algorithm": {"algorithm": GOST2004_KEY, "parameters": core.Any.load(_parameters(key))},
        "public_key": core.OctetString(key.public_key().spki_point_bytes()).dump(),
    }).dump()


def private_key_info(key: GostKey) -> bytes:
    """The PKCS#8 PrivateKeyInfo DER of ``key``, in the layout of NCA's key bags."""
    return gost_private_key_info(key.d, GOST2004_KEY if isinstance(key, GostPrivateKey) else GOST2015_KEY, _parameters(key))


def private_key_pem(key: GostKey) -> bytes:
    """``key`` as an unencrypted PEM PKCS#8, which :func:`gateway.security.signing_keys.load_signing_key` reads."""
    body = base64.encodebytes(private_key_info(key)).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n".encode()


def _signature_algorithm(key: GostKey) -> asn1_x509.SignedDigestAlgorithm:
    oid = GOST2004_SIGNATURE if isinstance(key, GostPrivateKey) else GOST2015_SIGNATURE
    return asn1_x509.SignedDigestAlgorithm({"algorithm": oid, "parameters": core.Null()})


def _time(value: datetime) -> asn1_x509.Time:
    return asn1_x509.Time({"utc_time" if value.year < 2050 else "general_time": value.replace(microsecond=0)})


def _extension(extension: x509.ExtensionType, critical: bool) -> asn1_x509.Extension:
    return asn1_x509.Extension({
        "extn_id": extension.oid.dotted_string, "critical": critical,
        "extn_value": core.ParsableOctetString(extension.public_bytes()),
    })


@dataclass(frozen=True)
class GostIssued:
    """A GOST key and its certificate."""

    key: GostKey
    certificate: x509.Certificate

    @property
    def key_pem(self) -> bytes:
        """The key as an unencrypted PEM PKCS#8."""
        return private_key_pem(self.key)

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def pkcs12(self, password: str, chain: list[x509.Certificate] | None = None) -> bytes:
        """NCA's PKCS#12 layout (PBE-SHA1-3DES key bag), with the issuing CA's certificate after the holder's."""
        return write_pkcs12(private_key_info(self.key), [self.certificate, *(chain or [])], password)


def build_certificate(
    subject: x509.Name, spki_der: bytes, issuer: x509.Name, signer: GostKey, days: int, extensions: list[tuple[x509.ExtensionType, bool]],
    valid_from: datetime | None = None,
) -> x509.Certificate:
    """A certificate of ``spki_der`` for ``subject``, signed by ``signer`` in the name of ``issuer``."""
    start = valid_from or datetime.now(UTC) - timedelta(days=1)
    tbs = asn1_x509.TbsCertificate({
        "version": "v3",
        "serial_number": x509.random_serial_number(),
        "signature": _signature_algorithm(signer),
        "issuer": asn1_x509.Name.load(issuer.public_bytes()),
        "validity": {"not_before": _time(start), "not_after": _time(start + timedelta(days=days))},
        "subject": asn1_x509.Name.load(subject.public_bytes()),
        "subject_public_key_info": asn1_x509.PublicKeyInfo.load(spki_der),
        "extensions": [_extension(value, critical) for value, critical in extensions],
    })
    certificate = asn1_x509.Certificate({
        "tbs_certificate": tbs, "signature_algorithm": _signature_algorithm(signer), "signature_value": signer.sign(tbs.dump()),
    })
    return x509.load_der_x509_certificate(certificate.dump())


def create_gost_ca(common_name: str = "Test national CA (GOST TEST)", algorithm: str = "gost2004", days: int = 3650) -> GostIssued:
    """A self-signed GOST certification authority."""
    key = new_key(algorithm)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = build_certificate(name, subject_public_key_info(key), name, key, days, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
    ])
    return GostIssued(key, certificate)


def issue_gost_participant(
    ca: GostIssued, bin_: str | None, common_name: str = "Test participant", iin: str = "931002451325",
    valid_days: int = 365, ocsp_url: str | None = None,
) -> GostIssued:
    """A GOST signing certificate (of the CA's algorithm) for an organisation (``bin_``) or an individual (None)."""
    key = new_key("gost2004" if isinstance(ca.key, GostPrivateKey) else "gost2015")
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.KeyUsage(True, True, False, False, False, False, False, False, False), True),
    ]
    if ocsp_url is not None:
        access = x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        extensions.append((x509.AuthorityInformationAccess([access]), False))
    certificate = build_certificate(
        participant_name(common_name, iin, bin_), subject_public_key_info(key), ca.certificate.subject, ca.key, valid_days, extensions,
    )
    return GostIssued(key, certificate)


def create_gost_crl(ca: GostIssued, revoked_serials: list[int], next_update_days: int = 7) -> bytes:
    """A CRL (DER) of ``ca`` listing ``revoked_serials``, signed with its GOST key."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    tbs = asn1_crl.TbsCertList({
        "version": "v2",
        "signature": _signature_algorithm(ca.key),
        "issuer": asn1_x509.Name.load(ca.certificate.subject.public_bytes()),
        "this_update": _time(now),
        "next_update": _time(now + timedelta(days=next_update_days)),
        "revoked_certificates": [{"user_certificate": serial, "revocation_date": _time(now)} for serial in revoked_serials] or None,
    })
    return asn1_crl.CertificateList({
        "tbs_cert_list": tbs, "signature_algorithm": _signature_algorithm(ca.key), "signature": ca.key.sign(tbs.dump()),
    }).dump()
