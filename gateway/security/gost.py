"""GOST R 34.10-2001 / 2012 signatures in pure Python: generic short-Weierstrass arithmetic (any p, a, b, q: the
256-bit curves of 34.10-2001 and the 512-bit ones of 34.10-2012). It takes and returns integers; byte conventions
are the callers' business, and the hash is ``gost3411.py``'s.

Points are in Jacobian coordinates; k·G adds precomputed multiples of G (one per window, signed digits, no
doubling), and so does z·Q for a public key Q seen before (an LRU of tables); a key seen for the first time is
multiplied the ordinary way, so that a stream of fresh keys neither pays for tables nor evicts them.
"""
from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from gateway.security import gost3411

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
    gost3411.gost34311(b"")  # also loads Botan, when installed, and checks it
    base_multiply(CRYPTOPRO_A, 1)
