"""PKCS#12 files in the shape Kazakhstan's NCA issues them, GOST keys included.

`cryptography` refuses a PKCS#12 whose key is GOST 34.310-2004 (1.2.398.3.10.1.1.1.1), so this module opens the
container itself (RFC 7292: SHA-1 PBE with 3DES or RC2, HMAC over the authSafe) and hands back the key as PKCS#8
DER for the caller to interpret; it writes the same shape, for GOST and RSA keys alike."""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from asn1crypto import algos, core, pkcs12
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.serialization import Encoding

_DAMAGED = "wrong password or damaged file"
_TRIPLE_DES = "pkcs12_sha1_tripledes_3key"
_PBE_KEY_SIZES = {_TRIPLE_DES: 24, "pkcs12_sha1_rc2_40": 5, "pkcs12_sha1_rc2_128": 16}
_KEY, _IV, _MAC = 1, 2, 3  # RFC 7292 B.3 purpose bytes
_WRITE_ITERATIONS = 2048
_MAX_ITERATIONS = 1_000_000  # the KDF runs in Python: a hostile count must not stall the reader for minutes
_SALT_SIZE = 20

# RC2 "PITABLE" of RFC 2268 §2
_RC2_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2179a59f587b34f1361456d8d09817d32"
    "bd8f40eb86b77b0bf09521225c6b4e8254d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed708e8eade8052eef784aa72ac354d6a2a"
    "961ad2715a1549744b9fd05e0418a4ecc2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a90d38341bab33ffb0bb480c5fb9b1cd2e"
    "c5f3db47e5a59c770aa62068fe7fc1ad"
)
_RC2_SHIFTS = (1, 2, 3, 5)


class UnsupportedPkcs12(ValueError):
    """A PKCS#12 that uses a mode or algorithm this module does not implement (as opposed to a damaged one)."""


@dataclass(frozen=True)
class Pkcs12Contents:
    """What a PKCS#12 holds: its one private key (PKCS#8 DER, decrypted) and its certificates, leaf first."""

    key_algorithm: str
    private_key_info: bytes
    certificates: list[x509.Certificate]


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _PrivateKeyInfo(core.Sequence):
    # asn1crypto's own PrivateKeyInfo raises on GOST OIDs; trailing attributes/publicKey are tolerated as extras
    _fields = [
        ("version", core.Integer),
        ("private_key_algorithm", _AlgorithmIdentifier),
        ("private_key", core.OctetString),
    ]


_Found = tuple[bytes | None, str, bytes]  # localKeyId, key algorithm OID, PrivateKeyInfo


def read_pkcs12(data: bytes, password: str) -> Pkcs12Contents:
    """Open a password-integrity PKCS#12 (any key type, GOST included) after checking its MAC.

    Raises ValueError("wrong password or damaged file") when the MAC does not match or the structure is broken,
    UnsupportedPkcs12 (a ValueError) for a file without a MAC or with encryption other than SHA-1 3DES/RC2 PBE,
    and ValueError when the file does not hold exactly one private key."""
    try:
        found_keys, found_certificates = _read_bags(data, _bmp(password))
    except UnsupportedPkcs12:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(_DAMAGED) from exc
    if len(found_keys) != 1:
        raise ValueError(f"expected one private key in the PKCS#12, found {len(found_keys)}")
    key_id, algorithm, info = found_keys[0]
    # stable sort: the certificate sharing the key's localKeyId first, the rest in file order
    ordered = sorted(found_certificates, key=lambda item: key_id is None or item[0] != key_id)
    return Pkcs12Contents(algorithm, info, [certificate for _, certificate in ordered])


def gost_private_scalar(private_key_info: bytes) -> int:
    """The private scalar d of a GOST PKCS#8 key: the privateKey OCTET STRING holds a DER INTEGER (NCA's layout)
    or, as gost-engine's "new format" writes it, a DER OCTET STRING of 32 or 64 little-endian bytes."""
    octets = _PrivateKeyInfo.load(private_key_info, strict=True)["private_key"].native
    inner = core.load(octets, strict=True)
    if isinstance(inner, core.Integer):
        scalar = inner.native
    elif isinstance(inner, core.OctetString) and len(inner.native) in (32, 64):
        scalar = int.from_bytes(inner.native, "little")
    else:
        raise ValueError("GOST private key is neither a DER INTEGER nor a 32/64-byte OCTET STRING")
    if scalar <= 0:
        raise ValueError("GOST private key scalar must be positive")
    return scalar


def gost_private_key_info(d: int, algorithm_oid: str, parameters_der: bytes | None) -> bytes:
    """PKCS#8 PrivateKeyInfo for a GOST scalar d laid out as NCA does: privateKey is an OCTET STRING holding the DER
    INTEGER d; parameters_der (e.g. the curve and hash-set SEQUENCE of the NCA file) is copied byte for byte."""
    if d <= 0:
        raise ValueError("GOST private key scalar must be positive")
    algorithm: dict[str, object] = {"algorithm": algorithm_oid}
    if parameters_der is not None:
        algorithm["parameters"] = core.Any.load(parameters_der, strict=True)
    value = {"version": 0, "private_key_algorithm": algorithm, "private_key": core.Integer(d).dump()}
    return _PrivateKeyInfo(value).dump()


def write_pkcs12(
    private_key_info: bytes, certificates: list[x509.Certificate], password: str, friendly_name: str | None = None
) -> bytes:
    """A PKCS#12 shaped like NCA's: the key in a pkcs8ShroudedKeyBag (PBE-SHA1-3DES), the certificates (the key's
    own first) in an encryptedData content, localKeyId and friendlyName linking key and leaf, MAC HMAC-SHA1.

    The localKeyId is the leaf's subject key identifier (NCA's choice), else its SHA-1 fingerprint; friendly_name
    defaults to that id in hex, as NCA names its entries. Salts are random, iterations 2048."""
    if not certificates:
        raise ValueError("write_pkcs12 needs at least the key's own certificate")
    _PrivateKeyInfo.load(private_key_info, strict=True)  # refuse anything that is not PKCS#8 before sealing it
    secret = _bmp(password)
    key_id = _local_key_id(certificates[0])
    attributes = [
        {"type": "local_key_id", "values": [key_id]},
        {"type": "friendly_name", "values": [key_id.hex() if friendly_name is None else friendly_name]},
    ]
    key_algorithm, sealed_key = _pbe_encrypt(private_key_info, secret)
    key_bag = {
        "bag_id": "pkcs8_shrouded_key_bag",
        "bag_value": {"encryption_algorithm": key_algorithm, "encrypted_data": sealed_key},
        "bag_attributes": attributes,
    }
    cert_bags: list[dict[str, object]] = [
        {"bag_id": "cert_bag", "bag_value": {"cert_id": "x509", "cert_value": core.ParsableOctetString(der)}}
        for der in (certificate.public_bytes(Encoding.DER) for certificate in certificates)
    ]
    cert_bags[0]["bag_attributes"] = attributes
    # NCA seals certificates with 40-bit RC2, which is breakable and needs OpenSSL 3's legacy provider; 3DES is
    # what it already uses for the key, so every reader of its files reads ours too
    cert_algorithm, sealed_certs = _pbe_encrypt(pkcs12.SafeContents(cert_bags).dump(), secret)
    sealed = {"content_type": "data", "content_encryption_algorithm": cert_algorithm, "encrypted_content": sealed_certs}
    auth_safe = pkcs12.AuthenticatedSafe([
        {"content_type": "data", "content": pkcs12.SafeContents([key_bag]).dump()},
        {"content_type": "encrypted_data", "content": {"version": "v0", "encrypted_content_info": sealed}},
    ]).dump()
    mac_salt = os.urandom(_SALT_SIZE)
    mac_key = _derive(secret, mac_salt, _WRITE_ITERATIONS, _MAC, 20, "sha1")
    digest_algorithm = {"algorithm": "sha1", "parameters": core.Null()}  # NULL parameters, as NCA writes them
    mac = {"digest_algorithm": digest_algorithm, "digest": hmac.digest(mac_key, auth_safe, "sha1")}
    return pkcs12.Pfx({
        "version": "v3",
        "auth_safe": {"content_type": "data", "content": auth_safe},
        "mac_data": {"mac": mac, "mac_salt": mac_salt, "iterations": _WRITE_ITERATIONS},
    }).dump()


def _read_bags(data: bytes, secret: bytes) -> tuple[list[_Found], list[tuple[bytes | None, x509.Certificate]]]:
    """The keys and the (localKeyId, certificate) pairs, in file order, after the MAC check."""
    pfx = pkcs12.Pfx.load(data, strict=True)
    if pfx["version"].native != "v3":
        raise ValueError(_DAMAGED)
    if pfx["auth_safe"]["content_type"].native != "data":
        raise UnsupportedPkcs12("only password-integrity PKCS#12 is supported")
    auth_safe = pfx["auth_safe"]["content"].native
    _check_mac(pfx["mac_data"], auth_safe, secret)
    found_keys: list[_Found] = []
    found_certificates: list[tuple[bytes | None, x509.Certificate]] = []
    for content in pkcs12.AuthenticatedSafe.load(auth_safe, strict=True):
        kind = content["content_type"].native
        if kind == "data":
            bags = content["content"].native
        elif kind == "encrypted_data":
            sealed = content["content"]["encrypted_content_info"]
            bags = _pbe_decrypt(sealed["content_encryption_algorithm"], sealed["encrypted_content"].native, secret)
        else:
            raise UnsupportedPkcs12(f"unsupported PKCS#12 content type {content['content_type'].dotted}")
        for bag in pkcs12.SafeContents.load(bags, strict=True):
            ids = (a["values"][0].native for a in bag["bag_attributes"] if a["type"].native == "local_key_id")
            key_id = next(ids, None)
            value = bag["bag_value"]
            if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                info = _pbe_decrypt(value["encryption_algorithm"], value["encrypted_data"].native, secret)
                algorithm = _PrivateKeyInfo.load(info, strict=True)["private_key_algorithm"]["algorithm"].dotted
                found_keys.append((key_id, algorithm, info))
            elif bag["bag_id"].native == "cert_bag" and value["cert_id"].native == "x509":
                # bytes(), not .native: asn1crypto would parse the certificate and raise on a GOST key
                found_certificates.append((key_id, x509.load_der_x509_certificate(bytes(value["cert_value"]))))
    return found_keys, found_certificates


def _check_mac(mac_data: pkcs12.MacData, auth_safe: bytes, secret: bytes) -> None:
    if not mac_data:
        raise UnsupportedPkcs12("PKCS#12 without a MAC: the password cannot be checked")
    digest = mac_data["mac"]["digest_algorithm"]["algorithm"].native
    if digest not in hashlib.algorithms_available:
        raise UnsupportedPkcs12(f"unsupported PKCS#12 MAC digest {digest}")
    size = hashlib.new(digest).digest_size
    key = _derive(secret, mac_data["mac_salt"].native, _iterations(mac_data["iterations"].native), _MAC, size, digest)
    if not hmac.compare_digest(hmac.digest(key, auth_safe, digest), mac_data["mac"]["digest"].native):
        raise ValueError(_DAMAGED)


def _pbe_decrypt(algorithm: algos.EncryptionAlgorithm, data: bytes, secret: bytes) -> bytes:
    name = algorithm["algorithm"].native
    if name not in _PBE_KEY_SIZES:
        raise UnsupportedPkcs12(f"unsupported PKCS#12 encryption {algorithm['algorithm'].dotted}")
    salt, iterations = algorithm["parameters"]["salt"].native, _iterations(algorithm["parameters"]["iterations"].native)
    key = _derive(secret, salt, iterations, _KEY, _PBE_KEY_SIZES[name], "sha1")
    iv = _derive(secret, salt, iterations, _IV, 8, "sha1")
    if name == _TRIPLE_DES:
        decryptor = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
    else:
        padded = _rc2_cbc_decrypt(key, iv, data)
    unpadder = padding.PKCS7(64).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _pbe_encrypt(data: bytes, secret: bytes) -> tuple[dict[str, object], bytes]:
    salt = os.urandom(_SALT_SIZE)
    key = _derive(secret, salt, _WRITE_ITERATIONS, _KEY, 24, "sha1")
    iv = _derive(secret, salt, _WRITE_ITERATIONS, _IV, 8, "sha1")
    padder = padding.PKCS7(64).padder()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
    return {"algorithm": _TRIPLE_DES, "parameters": {"salt": salt, "iterations": _WRITE_ITERATIONS}}, sealed


def _derive(secret: bytes, salt: bytes, iterations: int, purpose: int, size: int, digest: str) -> bytes:
    """RFC 7292 appendix B.2; written out because no installed library exposes it (cryptography keeps it internal)."""
    v = hashlib.new(digest).block_size

    def stretch(value: bytes) -> bytes:
        length = v * -(-len(value) // v)
        return (value * (length // len(value) + 1))[:length] if value else b""

    block = bytearray(stretch(salt) + stretch(secret))
    out = b""
    while len(out) < size:
        a = hashlib.new(digest, bytes([purpose]) * v + block).digest()
        for _ in range(iterations - 1):
            a = hashlib.new(digest, a).digest()
        out += a
        b = int.from_bytes((a * (v // len(a) + 1))[:v], "big") + 1
        for j in range(0, len(block), v):
            block[j:j + v] = ((int.from_bytes(block[j:j + v], "big") + b) % (1 << 8 * v)).to_bytes(v, "big")
    return out[:size]


def _rc2_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """RC2-CBC (RFC 2268) with as many effective key bits as the key has, which is how PKCS#12 uses it; needed
    because NCA seals certificates with 40-bit RC2 and cryptography's RC2 only takes 128-bit keys."""
    n = len(key)
    table = bytearray(key) + bytes(128 - n)
    for i in range(n, 128):
        table[i] = _RC2_PITABLE[(table[i - 1] + table[i - n]) & 0xFF]
    table[128 - n] = _RC2_PITABLE[table[128 - n]]
    for i in range(127 - n, -1, -1):
        table[i] = _RC2_PITABLE[table[i + 1] ^ table[i + n]]
    k = [table[2 * i] | table[2 * i + 1] << 8 for i in range(64)]
    out, previous = bytearray(), iv
    for offset in range(0, len(data), 8):
        block = data[offset:offset + 8]
        r = [int.from_bytes(block[i:i + 2], "little") for i in range(0, 8, 2)]
        j = 63
        for round_ in range(16):
            for i in (3, 2, 1, 0):
                shift = _RC2_SHIFTS[i]
                rotated = (r[i] >> shift | r[i] << (16 - shift)) & 0xFFFF
                r[i] = (rotated - k[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
                j -= 1
            if round_ in (4, 10):  # the two "mashing" rounds between the 5 + 6 + 5 mixing rounds
                for i in (3, 2, 1, 0):
                    r[i] = (r[i] - k[r[i - 1] & 63]) & 0xFFFF
        plain = b"".join(word.to_bytes(2, "little") for word in r)
        out += bytes(x ^ y for x, y in zip(plain, previous))
        previous = block
    return bytes(out)


def _iterations(count: int) -> int:
    if count < 1:
        raise ValueError(_DAMAGED)
    if count > _MAX_ITERATIONS:
        raise UnsupportedPkcs12(f"PKCS#12 iteration count {count} above {_MAX_ITERATIONS}")
    return count


def _bmp(password: str) -> bytes:
    # RFC 7292 B.1: the password as a BMPString with a two-byte NUL terminator
    return password.encode("utf-16-be") + b"\x00\x00"


def _local_key_id(certificate: x509.Certificate) -> bytes:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return certificate.fingerprint(hashes.SHA1())
