"""GOST 28147-89 encryption from the Botan library, when the machine has it (Debian: ``libbotan-2-19``).

GOST R 34.11-94 spends nine tenths of its time in four 28147-89 encryptions per 32-byte block; in CPython they
cost some 26 µs a block, in Botan about 1 µs with the call. No Python package carries the hash with NCA's test
S-box (Botan's own "GOST-34.11" uses the CryptoPro one), but Botan's block cipher takes the test S-box by name
through its stable C interface (FFI), so the hash's other steps stay in ``gost3411.py`` and only the encryptions come
from here. Nothing needs Botan: without it ``gost3411.py`` enciphers in Python, and it checks Botan against a known
answer before relying on it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# The S-box of id-GostR3411-94-TestParamSet, under Botan's name for it.
CIPHER_NAME = b"GOST-28147-89(R3411_94_TestParam)"
_LIBRARIES = ("botan-3", "botan-2")

Encipher = Callable[[bytes, bytes], bytes]


class BotanGost28147:
    """Botan's C interface to GOST 28147-89, loaded from the shared library."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._lib = library
        library.botan_version_string.restype = ctypes.c_char_p
        self.version = library.botan_version_string().decode("ascii", "replace")
        for name, argtypes in (
            ("botan_block_cipher_init", [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]),
            ("botan_block_cipher_destroy", [ctypes.c_void_p]),
            ("botan_block_cipher_set_key", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
            ("botan_block_cipher_encrypt_blocks", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]),
        ):
            function = getattr(library, name)
            function.argtypes, function.restype = argtypes, ctypes.c_int
        self.close(self.open())  # refuses a build without the cipher now, not on a caller's message

    def open(self) -> ctypes.c_void_p:
        """A new cipher object, for one digest at a time: its key is state, and another thread may run between
        two of a digest's calls."""
        handle = ctypes.c_void_p()
        if self._lib.botan_block_cipher_init(ctypes.byref(handle), CIPHER_NAME) != 0:
            raise OSError(f"{self.version} has no {CIPHER_NAME.decode()}")
        return handle

    def close(self, handle: ctypes.c_void_p) -> None:
        """Free a cipher object made by ``open``."""
        self._lib.botan_block_cipher_destroy(handle)

    def encipher(self, handle: ctypes.c_void_p) -> Encipher:
        """The four encryptions of a hash step: ``encipher(h, keys)`` enciphers the i-th 8 bytes of ``h`` under
        the i-th 32 bytes of ``keys`` (words little-endian, as ``gost3411.py`` lays them out)."""
        set_key = self._lib.botan_block_cipher_set_key
        encrypt = self._lib.botan_block_cipher_encrypt_blocks
        out = ctypes.create_string_buffer(32)
        at0 = ctypes.addressof(out)
        at1, at2, at3 = at0 + 8, at0 + 16, at0 + 24

        def encipher(h: bytes, keys: bytes) -> bytes:
            # Unrolled: a loop's index arithmetic costs a tenth of these eight calls. Botan answers 0 or a
            # negative code: one OR of the eight tells whether any failed (then ``out`` holds stale bytes).
            failed = (
                set_key(handle, keys[:32], 32) | encrypt(handle, h[:8], at0, 1)
                | set_key(handle, keys[32:64], 32) | encrypt(handle, h[8:16], at1, 1)
                | set_key(handle, keys[64:96], 32) | encrypt(handle, h[16:24], at2, 1)
                | set_key(handle, keys[96:], 32) | encrypt(handle, h[24:], at3, 1)
            )
            if failed:
                raise OSError(f"{self.version}: GOST 28147-89 failed (code {failed})")
            return out.raw

        return encipher


def load() -> BotanGost28147 | None:
    """Botan's GOST 28147-89, or None (and why, in the log) when no usable Botan is installed."""
    for name in _LIBRARIES:
        path = ctypes.util.find_library(name)
        if path is None:
            continue
        try:
            # PyDLL: the calls keep the GIL. Each lasts well under a microsecond, and a thread that let go of the
            # GIL eight times a block waited up to a switch interval to get it back whenever another thread was
            # busy: a 2 KB digest took 43 ms of wall time beside one busy thread, 1.5 ms this way.
            return BotanGost28147(ctypes.PyDLL(path))
        except (OSError, AttributeError) as exc:
            log.warning("Botan at %s is not usable for GOST hashing (%s); hashing in Python", path, exc)
    return None
