"""GOST R 34.11-94 hashing in pure Python, with the test S-box of RFC 4357 §11.2 and H0 = 0 (gost.md), in the
byte order of OpenSSL's gost-engine, BouncyCastle and RustCrypto: blocks are read little-endian and the digest is H
written little-endian.

It runs on the path of every GOST-signed message, so the code is shaped by CPython's costs:

* the 28147-89 round (S-box, then rotate by 11) is two lookups in tables over the 16-bit halves of a word, and
  where Botan is installed its block cipher does the four encryptions of a step instead (``botan.py``);
* the key schedule works on the four keys already byte-transposed (the P permutation), where A is a few shifts;
* psi, the hash's mixing map, is linear and acts alike on each of the 16 bit positions of its 16-bit words, so
  after a 16x16 bit transpose each bit-plane is one 16-bit number and psi^n is one table lookup.
"""
from __future__ import annotations

import array
import functools
import logging
import operator
import struct

from gateway.security import botan
from gateway.security.botan import Encipher

log = logging.getLogger(__name__)


# id-GostR3411-94-TestParamSet: row i substitutes the i-th nibble of a word, counted from the least significant.
_SBOX = (
    (4, 10, 9, 2, 13, 8, 0, 14, 6, 11, 1, 12, 7, 15, 5, 3),
    (14, 11, 4, 12, 6, 13, 15, 10, 2, 3, 8, 1, 0, 7, 5, 9),
    (5, 8, 1, 13, 10, 3, 4, 2, 14, 15, 12, 7, 6, 0, 9, 11),
    (7, 13, 10, 1, 0, 8, 9, 15, 14, 4, 6, 12, 11, 2, 5, 3),
    (6, 12, 7, 1, 5, 15, 13, 8, 4, 10, 9, 14, 0, 3, 11, 2),
    (4, 11, 10, 0, 7, 2, 1, 13, 3, 6, 8, 5, 9, 12, 15, 14),
    (13, 11, 4, 1, 3, 15, 5, 9, 0, 10, 14, 7, 6, 8, 2, 12),
    (1, 15, 13, 0, 5, 7, 10, 4, 9, 2, 3, 14, 6, 11, 8, 12),
)
_MASK256 = (1 << 256) - 1

# P: byte 4m + i of a key is byte 8i + m of W, so key word m gathers byte m of W's four 64-bit words.
_P_ORDER = [8 * i + m for m in range(8) for i in range(4)]
_P = operator.itemgetter(*_P_ORDER)
_P2 = operator.itemgetter(*_P_ORDER, *[32 + k for k in _P_ORDER])  # P of each half of 64 bytes


# The low 3, 2 and 1 bytes of each 32-bit word of a 256-bit number.
_LANE_LOW3, _LANE_LOW2, _LANE_LOW1 = (sum(low << 32 * m for m in range(8)) for low in (0xFFFFFF, 0xFFFF, 0xFF))
_C3 = 0xFF00FFFF000000FFFF0000FF00FFFF0000FF00FF00FF00FFFF00FF00FF00FF00
_P_C3 = int.from_bytes(bytes(_P(_C3.to_bytes(32, "little"))), "little")


def _transpose_masks(blocks: int) -> tuple[tuple[int, int], ...]:
    """The delta swaps that transpose each 256-bit block of 16 words x 16 bits (bit b of word j <-> bit j of
    word b): a swap of s x s sub-blocks moves a bit by 15·s places."""
    masks = []
    for s in (8, 4, 2, 1):
        block = sum(1 << (16 * j + b) for j in range(16) for b in range(16) if j % (2 * s) < s <= b % (2 * s))
        masks.append((15 * s, sum(block << 256 * n for n in range(blocks))))
    return tuple(masks)


_TRANSPOSE2, _TRANSPOSE1 = _transpose_masks(2), _transpose_masks(1)


def _transpose(x: int, masks: tuple[tuple[int, int], ...]) -> int:
    for shift, mask in masks:
        t = (x ^ (x >> shift)) & mask
        x ^= t ^ (t << shift)
    return x


def _plane_table(n: int) -> array.array[int]:
    """psi^n on one bit-plane: bit j of the plane is bit b of word j+1, and psi shifts the words down by one,
    feeding in w1 ^ w2 ^ w3 ^ w4 ^ w13 ^ w16."""
    images = []
    for bit in range(16):
        v = 1 << bit
        for _ in range(n):
            v = (v >> 1) | ((v & 0b1001_0000_0000_1111).bit_count() & 1) << 15
        images.append(v)
    table = [0]
    for image in images:  # linearity: each new bit doubles the table
        table += [t ^ image for t in table]
    return array.array("H", table)


def _half_table(rows: tuple[tuple[int, ...], ...], shift: int) -> array.array[int]:
    """The round function (S-box, then rotate left by 11) of a word whose other half is zero, indexed by the
    16-bit half at ``shift``."""
    low = [rows[0][i & 15] | rows[1][i >> 4] << 4 for i in range(256)]
    high = [rows[2][i & 15] << 8 | rows[3][i >> 4] << 12 for i in range(256)]
    words = [(h | lo) << shift for h in high for lo in low]
    return array.array("I", [(y << 11 | y >> 21) & 0xFFFFFFFF for y in words])


_Pair = tuple[array.array, array.array]


@functools.cache
def _round_tables() -> _Pair:
    """Built on first use (some 30 ms), and only when Python enciphers. Arrays, not lists: 1 MB that stays in the
    CPU's cache, where lists of int objects (10 MB) made every other lookup a cache miss, a third of the time."""
    high = _half_table(_SBOX[4:], 16)
    # Indexed by (n1 + key) >> 16, which may carry into bit 16: the doubled table absorbs the mod 2^32.
    return _half_table(_SBOX[:4], 0), high + high


@functools.cache
def _psi_tables() -> _Pair:
    return _plane_table(61), _plane_table(74)


_unpack8, _pack8, _unpack_keys = struct.Struct("<8I").unpack, struct.Struct("<8I").pack, struct.Struct("<32I").unpack
_unpack_planes, _pack_planes = struct.Struct("<32H").unpack, struct.Struct("<16H").pack


def _python_encipher() -> Encipher:
    """The four encryptions of a hash step in Python (see ``botan.BotanGost28147.encipher``)."""
    lo, hi = _round_tables()

    def encipher(h: bytes, keys: bytes) -> bytes:
        key_words = _unpack_keys(keys)
        words = _unpack8(h)
        s = []
        for i in range(0, 8, 2):
            k0, k1, k2, k3, k4, k5, k6, k7 = key_words[4 * i:4 * i + 8]
            n1, n2 = words[i], words[i + 1]
            for _ in range(3):
                n2 ^= lo[(t := n1 + k0) & 0xFFFF] ^ hi[t >> 16]
                n1 ^= lo[(t := n2 + k1) & 0xFFFF] ^ hi[t >> 16]
                n2 ^= lo[(t := n1 + k2) & 0xFFFF] ^ hi[t >> 16]
                n1 ^= lo[(t := n2 + k3) & 0xFFFF] ^ hi[t >> 16]
                n2 ^= lo[(t := n1 + k4) & 0xFFFF] ^ hi[t >> 16]
                n1 ^= lo[(t := n2 + k5) & 0xFFFF] ^ hi[t >> 16]
                n2 ^= lo[(t := n1 + k6) & 0xFFFF] ^ hi[t >> 16]
                n1 ^= lo[(t := n2 + k7) & 0xFFFF] ^ hi[t >> 16]
            n2 ^= lo[(t := n1 + k7) & 0xFFFF] ^ hi[t >> 16]
            n1 ^= lo[(t := n2 + k6) & 0xFFFF] ^ hi[t >> 16]
            n2 ^= lo[(t := n1 + k5) & 0xFFFF] ^ hi[t >> 16]
            n1 ^= lo[(t := n2 + k4) & 0xFFFF] ^ hi[t >> 16]
            n2 ^= lo[(t := n1 + k3) & 0xFFFF] ^ hi[t >> 16]
            n1 ^= lo[(t := n2 + k2) & 0xFFFF] ^ hi[t >> 16]
            n2 ^= lo[(t := n1 + k1) & 0xFFFF] ^ hi[t >> 16]
            n1 ^= lo[(t := n2 + k0) & 0xFFFF] ^ hi[t >> 16]
            s += (n2, n1)  # the 32nd round does not swap the halves
        return _pack8(*s)

    return encipher


def _step(h: bytes, m: bytes, encipher: Encipher, psi61: array.array[int], psi74: array.array[int]) -> bytes:
    """The compression function: H' = psi^61(H ^ psi(M ^ psi^12(S))), S being H enciphered under keys from H, M."""
    # The keys, with P applied: on P-transposed values A (u's step) and A^2 (v's) are byte shifts within words.
    # Unrolled, and P(H) and P(M) in one gather: a few percent of the whole hash.
    x = int.from_bytes(bytes(_P2(h + m)), "little")
    u, v = x & _MASK256, x >> 256
    u1 = (u >> 8) & _LANE_LOW3 | ((u ^ u >> 8) & _LANE_LOW1) << 24
    v1 = (v >> 16) & _LANE_LOW2 | ((v ^ v >> 8) & _LANE_LOW2) << 16
    u2 = ((u1 >> 8) & _LANE_LOW3 | ((u1 ^ u1 >> 8) & _LANE_LOW1) << 24) ^ _P_C3
    v2 = (v1 >> 16) & _LANE_LOW2 | ((v1 ^ v1 >> 8) & _LANE_LOW2) << 16
    u3 = (u2 >> 8) & _LANE_LOW3 | ((u2 ^ u2 >> 8) & _LANE_LOW1) << 24
    v3 = (v2 >> 16) & _LANE_LOW2 | ((v2 ^ v2 >> 8) & _LANE_LOW2) << 16
    s = encipher(h, (u ^ v | (u1 ^ v1) << 256 | (u2 ^ v2) << 512 | (u3 ^ v3) << 768).to_bytes(128, "little"))
    # psi^61(H ^ psi(M ^ psi^12(S))) = psi^61(H ^ psi(M)) ^ psi^74(S): psi once on whole words (a shift, and the
    # feedback word w1 ^ w2 ^ w3 ^ w4 ^ w13 ^ w16 on top), the powers by one lookup per bit-plane.
    y = int.from_bytes(m, "little")
    y = y >> 16 | ((y ^ y >> 16 ^ y >> 32 ^ y >> 48 ^ y >> 192 ^ y >> 240) & 0xFFFF) << 240
    y ^= int.from_bytes(h + s, "little")  # one transpose for both
    planes = _unpack_planes(_transpose(y, _TRANSPOSE2).to_bytes(64, "little"))
    mixed = _pack_planes(*[psi61[a] ^ psi74[b] for a, b in zip(planes[:16], planes[16:])])
    return _transpose(int.from_bytes(mixed, "little"), _TRANSPOSE1).to_bytes(32, "little")


def _digest(data: bytes, encipher: Encipher) -> bytes:
    data = bytes(data)
    length = len(data)
    data += bytes(-length % 32)  # a last partial block is padded with zeros, checksum included
    psi61, psi74 = _psi_tables()
    h = bytes(32)
    checksum = 0
    for i in range(0, len(data), 32):
        block = data[i:i + 32]
        h = _step(h, block, encipher, psi61, psi74)
        checksum += int.from_bytes(block, "little")
    h = _step(h, (8 * length & _MASK256).to_bytes(32, "little"), encipher, psi61, psi74)
    return _step(h, (checksum & _MASK256).to_bytes(32, "little"), encipher, psi61, psi74)


# gost.md's known answer for "abc": Botan is trusted with the encryptions only once it gives it.
_ABC_DIGEST = bytes.fromhex("f3134348c44fb1b2a277729e2285ebb5cb5e0f29c975bc753b70497c06a4d51d")


@functools.cache
def _botan() -> botan.BotanGost28147 | None:
    library = botan.load()
    if library is None:
        return None
    try:
        handle = library.open()
        try:
            right = _digest(b"abc", library.encipher(handle)) == _ABC_DIGEST
        finally:
            library.close(handle)
    except OSError as exc:
        log.warning("%s failed its GOST R 34.11-94 check (%s); hashing in Python", library.version, exc)
        return None
    if not right:
        log.warning("%s gives a wrong GOST R 34.11-94 digest; hashing in Python", library.version)
        return None
    return library


def gost34311(data: bytes, *, use_botan: bool = True) -> bytes:
    """The GOST R 34.11-94 digest of ``data`` (test S-box, H0 = 0), 32 bytes in gost.md's byte order; the
    encryptions in Botan when it is installed (``use_botan=False`` keeps them in Python, for comparisons)."""
    library = _botan() if use_botan else None
    if library is None:
        return _digest(data, _python_encipher())
    handle = library.open()
    try:
        return _digest(data, library.encipher(handle))
    finally:
        library.close(handle)


def hash_implementation() -> str:
    """What enciphers inside the hash: Botan's version string, or "Python"."""
    library = _botan()
    return library.version if library is not None else "Python"
