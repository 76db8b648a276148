"""GOST R 34.11-94 hashing and GOST R 34.10-2001 signatures in pure Python (gost.md).

The hash uses the test S-box of RFC 4357 §11.2 and H0 = 0, with the byte order of OpenSSL's gost-engine,
BouncyCastle and RustCrypto: blocks are read little-endian and the digest is H written little-endian.

The curve code is generic short-Weierstrass arithmetic (any p, a, b, q: the 256-bit curves of 34.10-2001 and the
512-bit ones of 34.10-2012). It takes and returns integers; byte conventions are the callers' business.

Both run on the path of every signed message, so the code is shaped by CPython's costs:

* the 28147-89 round (S-box, then rotate by 11) is two lookups in tables over the 16-bit halves of a word;
* the key schedule works on the four keys already byte-transposed (the P permutation), where A is a few shifts;
* psi, the hash's mixing map, is linear and acts alike on each of the 16 bit positions of its 16-bit words, so
  after a 16x16 bit transpose each bit-plane is one 16-bit number and psi^n is one table lookup;
* points are in Jacobian coordinates; k·G adds precomputed multiples of G (one per window, signed digits, no
  doubling), and so does z·Q for a public key Q seen before (an LRU of tables); a key seen for the first time
  is multiplied the ordinary way, so that a stream of fresh keys neither pays for tables nor evicts them.
"""
from __future__ import annotations

import array
import functools
import operator
import secrets
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass

# --- GOST R 34.11-94 ------------------------------------------------------------------------------------------

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
_P = operator.itemgetter(*[8 * i + m for m in range(8) for i in range(4)])


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


_Tables = tuple[array.array, array.array, array.array, array.array]


@functools.cache
def _tables() -> _Tables:
    """Built on first use (some 30 ms) rather than at import. Arrays, not lists: 1 MB that stays in the CPU's
    cache, where lists of int objects (10 MB) made every other lookup a cache miss, a third of the hash's time."""
    high = _half_table(_SBOX[4:], 16)
    # Indexed by (n1 + key) >> 16, which may carry into bit 16: the doubled table absorbs the mod 2^32.
    return _half_table(_SBOX[:4], 0), high + high, _plane_table(61), _plane_table(74)


_unpack8, _pack8, _unpack_keys = struct.Struct("<8I").unpack, struct.Struct("<8I").pack, struct.Struct("<32I").unpack
_unpack_planes, _pack_planes = struct.Struct("<32H").unpack, struct.Struct("<16H").pack


def _step(h: bytes, m: bytes, tables: _Tables) -> bytes:
    """The compression function: H' = psi^61(H ^ psi(M ^ psi^12(S))), S being H enciphered under keys from H, M."""
    lo, hi, psi61, psi74 = tables
    # The keys, with P applied: on P-transposed values A (u's step) and A^2 (v's) are byte shifts within words.
    u = int.from_bytes(bytes(_P(h)), "little")
    v = int.from_bytes(bytes(_P(m)), "little")
    keys = u ^ v
    for shift, c in ((256, 0), (512, _P_C3), (768, 0)):
        u = ((u >> 8) & _LANE_LOW3 | ((u ^ (u >> 8)) & _LANE_LOW1) << 24) ^ c
        v = (v >> 16) & _LANE_LOW2 | ((v ^ (v >> 8)) & _LANE_LOW2) << 16
        keys |= (u ^ v) << shift
    key_words = _unpack_keys(keys.to_bytes(128, "little"))
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
    # psi^61(H ^ psi(M ^ psi^12(S))) = psi^61(H ^ psi(M)) ^ psi^74(S): psi once on whole words (a shift, and the
    # feedback word w1 ^ w2 ^ w3 ^ w4 ^ w13 ^ w16 on top), the powers by one lookup per bit-plane.
    y = int.from_bytes(m, "little")
    y = y >> 16 | ((y ^ y >> 16 ^ y >> 32 ^ y >> 48 ^ y >> 192 ^ y >> 240) & 0xFFFF) << 240
    y ^= int.from_bytes(h, "little") | int.from_bytes(_pack8(*s), "little") << 256  # one transpose for both
    planes = _unpack_planes(_transpose(y, _TRANSPOSE2).to_bytes(64, "little"))
    mixed = _pack_planes(*[psi61[a] ^ psi74[b] for a, b in zip(planes[:16], planes[16:])])
    return _transpose(int.from_bytes(mixed, "little"), _TRANSPOSE1).to_bytes(32, "little")


def gost34311(data: bytes) -> bytes:
    """The GOST R 34.11-94 digest of ``data`` (test S-box, H0 = 0), 32 bytes in gost.md's byte order."""
    data = bytes(data)
    length = len(data)
    data += bytes(-length % 32)  # a last partial block is padded with zeros, checksum included
    tables = _tables()
    h = bytes(32)
    checksum = 0
    for i in range(0, len(data), 32):
        block = data[i:i + 32]
        h = _step(h, block, tables)
        checksum += int.from_bytes(block, "little")
    h = _step(h, (8 * length & _MASK256).to_bytes(32, "little"), tables)
    return _step(h, (checksum & _MASK256).to_bytes(32, "little"), tables)


# --- GOST R 34.10-2001 / 2012 curve arithmetic ------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """y^2 = x^3 + a·x + b mod p, with a base point (gx, gy) of prime order q."""

    name: str
    p: int
    a: int
    b: int
    q: int
    gx: int
    gy: int


CRYPTOPRO_A = Curve(
    "id-GostR3410-2001-CryptoPro-A-ParamSet",
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97,
    a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94,  # p - 3
    b=166, q=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893,
    gx=1, gy=0x8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14,
)

_Jacobian = tuple[int, int, int]  # (X, Y, Z) stands for (X/Z^2, Y/Z^3); Z = 0 is the point at infinity
_INFINITY: _Jacobian = (1, 1, 0)
_BASE_WINDOW = 8  # bits per window of G's table: 33 additions for a 256-bit k·G; 0.8 MB per curve
_PUBLIC_WINDOW = 4  # smaller for public keys, of which many are kept: 65 additions; 75 KB per 256-bit key
_PUBLIC_TABLES = 256  # public keys whose tables are kept: at most ~19 MB


def _small_a(curve: Curve) -> int:
    """a as the integer nearest 0 (-3 for most curves), which makes a·Z^4 a cheap product."""
    a = curve.a % curve.p
    return a - curve.p if a > curve.p // 2 else a


def _double(x: int, y: int, z: int, p: int, a: int) -> _Jacobian:
    if not z or not y:
        return _INFINITY
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = (3 * x * x + a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p


def _add_affine(x1: int, y1: int, z1: int, x2: int, y2: int, p: int, a: int) -> _Jacobian:
    """(x1, y1, z1) + the affine point (x2, y2)."""
    if not z1:
        return x2, y2, 1
    zz = z1 * z1 % p
    h = (x2 * zz - x1) % p
    r = (y2 * z1 * zz - y1) % p
    if not h:
        return _double(x1, y1, z1, p, a) if not r else _INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - y1 * hhh) % p, z1 * h % p


def _to_affine(points: list[_Jacobian], p: int) -> list[tuple[int, int]]:
    """Many points to affine with one inversion (Montgomery's trick); ValueError if one is at infinity."""
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % p)
    inverse = pow(prefix[-1], -1, p)
    affine = []
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zi = inverse * prefix[i] % p
        inverse = inverse * z % p
        zi2 = zi * zi % p
        affine.append((x * zi2 % p, y * zi2 * zi % p))
    affine.reverse()
    return affine


def _window_rows(curve: Curve, point: tuple[int, int], w: int, count: int = 0) -> list[list[int]]:
    """For ``count`` w-bit windows i (by default, one more than q's bits need, for the carry of signed digits),
    the multiples j·2^(w·i)·point for j = 1 .. 2^(w-1), flat as [x1, y1, x2, y2, ...]. ValueError if a multiple is
    at infinity (only a point of small order has one)."""
    p, a = curve.p, _small_a(curve)
    half = 1 << (w - 1)
    bases = [(point[0], point[1], 1)]
    for _ in range((count or (curve.q.bit_length() + w) // w) - 1):
        x, y, z = bases[-1]
        for _ in range(w):
            x, y, z = _double(x, y, z, p, a)
        bases.append((x, y, z))
    multiples: list[_Jacobian] = []
    for bx, by in _to_affine(bases, p):
        row = [(bx, by, 1)]
        for j in range(2, half + 1):  # doubling is cheaper than adding, so j·B for even j is 2·(j/2)·B
            row.append(_double(*row[j // 2 - 1], p, a) if j % 2 == 0 else _add_affine(*row[-1], bx, by, p, a))
        multiples += row
    flat = [c for xy in _to_affine(multiples, p) for c in xy]
    return [flat[i:i + 2 * half] for i in range(0, len(flat), 2 * half)]


def _signed_digits(k: int, w: int) -> list[int]:
    """k in base 2^w, least significant first, with digits in (-2^(w-1), 2^(w-1)] so a table holds half as many."""
    digits = []
    half, full = 1 << (w - 1), 1 << w
    while k:
        d = k & (full - 1)
        k >>= w
        if d > half:
            d -= full
            k += 1
        digits.append(d)
    return digits


def _add_digit(acc: _Jacobian, row: list[int], d: int, p: int, a: int) -> _Jacobian:
    """acc + d·B, ``row`` holding B, 2B, 3B, ... (flat affine) and -(x, y) being (x, p - y)."""
    if d > 0:
        return _add_affine(*acc, row[2 * d - 2], row[2 * d - 1], p, a)
    if d < 0:
        return _add_affine(*acc, row[-2 * d - 2], p - row[-2 * d - 1], p, a)
    return acc


def _add_windows(acc: _Jacobian, rows: list[list[int]], k: int, w: int, p: int, a: int) -> _Jacobian:
    """acc + k·point, ``rows`` being ``_window_rows`` of point: one addition per window, no doubling."""
    for row, d in zip(rows, _signed_digits(k, w)):
        acc = _add_digit(acc, row, d, p, a)
    return acc


def _multiply(curve: Curve, point: tuple[int, int], k: int) -> _Jacobian:
    """k·point for a point with no table: w doublings then one addition per window, most significant first."""
    p, a = curve.p, _small_a(curve)
    row = _window_rows(curve, point, _PUBLIC_WINDOW, 1)[0]
    acc = _INFINITY
    for d in reversed(_signed_digits(k, _PUBLIC_WINDOW)):
        for _ in range(_PUBLIC_WINDOW):
            acc = _double(*acc, p, a)
        acc = _add_digit(acc, row, d, p, a)
    return acc


@functools.cache
def _base_rows(curve: Curve) -> list[list[int]]:
    return _window_rows(curve, (curve.gx, curve.gy), _BASE_WINDOW)


_tables_lock = threading.Lock()
_public_rows: OrderedDict[tuple[Curve, tuple[int, int]], list[list[int]]] = OrderedDict()
_seen_once: OrderedDict[tuple[Curve, tuple[int, int]], None] = OrderedDict()


def _public_table(curve: Curve, point: tuple[int, int]) -> list[list[int]] | None:
    """The table of a public key used before; None (and the key noted) the first time, so that a table (~4 ms,
    ~75 KB) is only built for keys that come back."""
    key = (curve, point)
    with _tables_lock:
        rows = _public_rows.get(key)
        if rows is not None:
            _public_rows.move_to_end(key)
            return rows
        if key not in _seen_once:
            _seen_once[key] = None
            if len(_seen_once) > _PUBLIC_TABLES:
                _seen_once.popitem(last=False)
            return None
        del _seen_once[key]
    rows = _window_rows(curve, point, _PUBLIC_WINDOW)
    with _tables_lock:
        _public_rows[key] = rows
        if len(_public_rows) > _PUBLIC_TABLES:
            _public_rows.popitem(last=False)
    return rows


def base_multiply(curve: Curve, k: int) -> tuple[int, int]:
    """k·G in affine coordinates; ValueError when k is a multiple of q (the point at infinity)."""
    k %= curve.q
    if not k:
        raise ValueError("k·G is the point at infinity")
    point = _add_windows(_INFINITY, _base_rows(curve), k, _BASE_WINDOW, curve.p, _small_a(curve))
    return _to_affine([point], curve.p)[0]


def is_on_curve(curve: Curve, point: tuple[int, int]) -> bool:
    """Whether ``point`` is a pair of integers in [0, p) satisfying the curve equation."""
    try:
        x, y = point
    except (TypeError, ValueError):
        return False
    p = curve.p
    if not (isinstance(x, int) and isinstance(y, int) and 0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def sign(curve: Curve, d: int, e: int, k: int | None = None) -> tuple[int, int]:
    """The GOST R 34.10 signature (r, s) of e (the digest as an integer, reduced mod q, 1 if 0) under the private
    key d. k is drawn with ``secrets`` unless given (for tests); a given k that makes r or s zero is a ValueError,
    a drawn one is drawn again."""
    q = curve.q
    if not 0 < d < q:
        raise ValueError("the private key must be in [1, q)")
    e = e % q or 1
    while True:
        nonce = secrets.randbelow(q - 1) + 1 if k is None else k
        if not 0 < nonce < q:
            raise ValueError("k must be in [1, q)")
        r = base_multiply(curve, nonce)[0] % q
        s = (r * d + nonce * e) % q
        if r and s:
            return r, s
        if k is not None:
            raise ValueError("this k gives r = 0 or s = 0")


def verify(curve: Curve, public: tuple[int, int], e: int, r: int, s: int) -> bool:
    """Whether (r, s) is a GOST R 34.10 signature of e (reduced mod q, 1 if 0) under the public key; False, never
    an exception, for any malformed input."""
    q, p = curve.q, curve.p
    if not (isinstance(r, int) and isinstance(s, int) and isinstance(e, int) and 0 < r < q and 0 < s < q):
        return False
    if not is_on_curve(curve, public):
        return False
    public = (public[0], public[1])  # a hashable key for the table cache, whatever sequence came in
    v = pow(e % q or 1, -1, q)
    z1, z2 = s * v % q, -r * v % q
    a = _small_a(curve)
    try:
        rows = _public_table(curve, public)
        if rows is None:
            acc = _multiply(curve, public, z2)
        else:
            acc = _add_windows(_INFINITY, rows, z2, _PUBLIC_WINDOW, p, a)
    except ValueError:  # a point of small order (curves with a cofactor) reached infinity in a table
        return False
    x, _, z = _add_windows(acc, _base_rows(curve), z1, _BASE_WINDOW, p, a)
    # x/z^2 mod q == r without an inversion: x/z^2 is one of r, r + q, r + 2q, ... below p.
    zz = z * z % p
    return any((x - candidate * zz) % p == 0 for candidate in range(r, p, q)) if z else False


def warm_up() -> None:
    """Build the hash tables and CryptoPro-A's base-point table now (some tens of milliseconds), so that no
    caller's first GOST message pays for them."""
    gost34311(b"")
    base_multiply(CRYPTOPRO_A, 1)
