"""NCA-shaped PKCS#12 (GOST and RSA keys) against the real NCA test keys, read at run time from ../shared."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from asn1crypto import core, pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from gostcrypto import gostsignature

from gateway.security.nca_pkcs12 import (
    Pkcs12Contents,
    UnsupportedPkcs12,
    gost_private_key_info,
    gost_private_scalar,
    read_pkcs12,
    write_pkcs12,
)

PKI = Path(__file__).resolve().parents[2] / "shared" / "peers" / "nca-test-pki"
KEYS = PKI / "individual_valid"
GOST_P12 = KEYS / "GOSTKNCA_f8a422238209b6e753116431b69b09178f14e9d7.p12"
NCA_KEY_ID = bytes.fromhex("f8a422238209b6e753116431b69b09178f14e9d7")  # the leaf's subject key identifier
PASSWORD = "Qwerty12"
GOST_2004 = "1.2.398.3.10.1.1.1.1"
RSA = "1.2.840.113549.1.1.1"
DAMAGED = "wrong password or damaged file"

# gost.md: the curve RFC 4357 calls id-GostR3410-2001-CryptoPro-A-ParamSet
_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97
_Q = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893
CRYPTOPRO_A = {
    "p": _P, "a": _P - 3, "b": 166, "m": _Q, "q": _Q,
    "x": 1, "y": 0x8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14,
}

pytestmark = pytest.mark.skipif(not GOST_P12.is_file(), reason="NCA test PKI material not available")


class _Elements(core.SequenceOf):
    # a SEQUENCE read element by element, without asn1crypto's typed (GOST-refusing) structures
    _child_spec = core.Any


class _Spki(core.Sequence):
    # asn1crypto's typed SPKI raises on the GOST algorithm OID
    _fields = [("algorithm", core.Any), ("public_key", core.BitString)]


@pytest.fixture(scope="module")
def gost() -> Pkcs12Contents:
    return read_pkcs12(GOST_P12.read_bytes(), PASSWORD)


@pytest.fixture(scope="module")
def rsa_material() -> tuple[bytes, rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]:
    """(PKCS#8, key, leaf, CA) of a throwaway RSA test PKI."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(65537, 2048)
    key = rsa.generate_private_key(65537, 2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    info = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return info, key, leaf, ca


def certificate_point(certificate: x509.Certificate) -> tuple[int, int]:
    """The GOST public point of a certificate: a 64-byte OCTET STRING in the BIT STRING, x then y, little-endian."""
    spki = _Spki.load(_Elements.load(certificate.tbs_certificate_bytes)[6].dump())
    point = core.OctetString.load(spki["public_key"].contents[1:]).native
    assert len(point) == 64
    return int.from_bytes(point[:32], "little"), int.from_bytes(point[32:], "little")


def algorithm_parameters(private_key_info: bytes) -> bytes:
    return _Elements.load(_Elements.load(private_key_info)[1].dump())[1].dump()


def test_real_gost_file_reads(gost: Pkcs12Contents) -> None:
    assert gost.key_algorithm == GOST_2004
    assert len(gost.certificates) == 1
    units = gost.certificates[0].subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [unit.value for unit in units] == ["BIN123456789021"]


def test_gost_scalar_matches_certificate(gost: Pkcs12Contents) -> None:
    d = gost_private_scalar(gost.private_key_info)
    assert 0 < d < _Q
    public = gostsignature.new(gostsignature.MODE_256, CRYPTOPRO_A).public_key_generate(d.to_bytes(32, "big"))
    assert (int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big")) == certificate_point(gost.certificates[0])


def test_gost_private_key_info_rebuilds_nca_layout(gost: Pkcs12Contents) -> None:
    d = gost_private_scalar(gost.private_key_info)
    assert gost_private_key_info(d, GOST_2004, algorithm_parameters(gost.private_key_info)) == gost.private_key_info


def test_gost_scalar_little_endian_octet_string_variant(gost: Pkcs12Contents) -> None:
    d = gost_private_scalar(gost.private_key_info)
    fields = _Elements.load(gost.private_key_info)
    variant = _Elements(
        [fields[0], fields[1], core.OctetString(core.OctetString(d.to_bytes(32, "little")).dump())]
    ).dump()
    assert gost_private_scalar(variant) == d


def test_wrong_password() -> None:
    with pytest.raises(ValueError, match=DAMAGED):
        read_pkcs12(GOST_P12.read_bytes(), "Qwerty13")


@pytest.mark.parametrize("where", [200, 0.5, -1], ids=["key bag", "certificates", "mac iterations"])
def test_damaged_file(where: float) -> None:
    data = bytearray(GOST_P12.read_bytes())
    offset = int(len(data) * where) if isinstance(where, float) else where
    data[offset] ^= 0x01
    with pytest.raises(ValueError, match=DAMAGED):
        read_pkcs12(bytes(data), PASSWORD)


def test_file_without_mac_is_refused() -> None:
    pfx = asn1_pkcs12.Pfx.load(GOST_P12.read_bytes())
    unmacked = asn1_pkcs12.Pfx({"version": "v3", "auth_safe": pfx["auth_safe"]}).dump()
    with pytest.raises(UnsupportedPkcs12):
        read_pkcs12(unmacked, PASSWORD)


def test_gost_round_trip_in_nca_shape(gost: Pkcs12Contents) -> None:
    written = write_pkcs12(gost.private_key_info, gost.certificates, "другой пароль")
    assert read_pkcs12(written, "другой пароль") == gost
    with pytest.raises(ValueError, match=DAMAGED):
        read_pkcs12(written, PASSWORD)
    pfx = asn1_pkcs12.Pfx.load(written)
    assert pfx["mac_data"]["mac"]["digest_algorithm"]["algorithm"].native == "sha1"
    key_content, cert_content = pfx.authenticated_safe
    (key_bag,) = asn1_pkcs12.SafeContents.load(key_content["content"].native)
    assert key_bag["bag_id"].native == "pkcs8_shrouded_key_bag"
    assert key_bag["bag_value"]["encryption_algorithm"]["algorithm"].native == "pkcs12_sha1_tripledes_3key"
    attributes = {attribute["type"].native: attribute["values"][0].native for attribute in key_bag["bag_attributes"]}
    assert attributes == {"local_key_id": NCA_KEY_ID, "friendly_name": NCA_KEY_ID.hex()}
    sealed = cert_content["content"]["encrypted_content_info"]
    assert cert_content["content_type"].native == "encrypted_data"
    assert sealed["content_encryption_algorithm"]["algorithm"].native == "pkcs12_sha1_tripledes_3key"


def test_nca_rsa_files_read_like_cryptography_reads_them() -> None:
    for path in sorted(KEYS.glob("*RSA256_*.p12")):
        data = path.read_bytes()
        key, certificate, _ = pkcs12.load_key_and_certificates(data, PASSWORD.encode())
        contents = read_pkcs12(data, PASSWORD)
        assert contents.key_algorithm == RSA
        assert serialization.load_der_private_key(contents.private_key_info, None).private_numbers() == key.private_numbers()
        assert contents.certificates[0] == certificate


def test_rsa_round_trip_loads_in_cryptography(rsa_material: tuple[bytes, rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]) -> None:
    info, key, leaf, ca = rsa_material
    written = write_pkcs12(info, [leaf, ca], "secret", friendly_name="gateway")
    assert read_pkcs12(written, "secret") == Pkcs12Contents(RSA, info, [leaf, ca])
    loaded = pkcs12.load_pkcs12(written, b"secret")
    assert loaded.key is not None and loaded.key.private_numbers() == key.private_numbers()
    assert loaded.cert is not None and loaded.cert.certificate == leaf and loaded.cert.friendly_name == b"gateway"
    assert [extra.certificate for extra in loaded.additional_certs] == [ca]


def test_reads_cryptography_written_file(rsa_material: tuple[bytes, rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]) -> None:
    info, key, leaf, ca = rsa_material
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(b"secret")
    )
    written = pkcs12.serialize_key_and_certificates(b"k", key, leaf, [ca], encryption)
    contents = read_pkcs12(written, "secret")
    assert contents.certificates == [leaf, ca]
    assert serialization.load_der_private_key(contents.private_key_info, None).private_numbers() == key.private_numbers()
