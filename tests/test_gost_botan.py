"""GOST R 34.11-94 with its encryptions in Botan (gateway/security/botan.py): the same digests as the Python
cipher, a Botan that answers wrongly is not used, and concurrent hashing does not share a key.

CI installs Debian's ``libbotan-2-19``; on a machine without Botan the tests that need it are skipped, and the
hash runs in Python (``use_botan=False`` compares the two here, whatever is installed)."""
from __future__ import annotations

import ctypes
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.security import botan, gost3411
from tests.test_gost_primitives import KNOWN_DIGESTS

needs_botan = pytest.mark.skipif(botan.load() is None, reason="Botan (libbotan-2-19 or -3) is not installed")


@pytest.fixture
def fresh_choice() -> Iterator[None]:
    """gost3411.py decides once per process whether to use Botan; these tests decide again, then restore."""
    gost3411._botan.cache_clear()
    yield
    gost3411._botan.cache_clear()


@needs_botan
def test_botan_enciphers_the_hash_when_installed() -> None:
    assert gost3411.hash_implementation().startswith("Botan")


@needs_botan
@pytest.mark.parametrize("message", list(KNOWN_DIGESTS))
def test_known_digests_through_botan(message: bytes) -> None:
    assert gost3411.gost34311(message).hex() == KNOWN_DIGESTS[message]


@needs_botan
@pytest.mark.parametrize("length", [1, 31, 32, 33, 64, 65, 1893, 10_000])
def test_botan_and_python_ciphers_give_the_same_digest(length: int) -> None:
    data = random.Random(length).randbytes(length)
    assert gost3411.gost34311(data) == gost3411.gost34311(data, use_botan=False)


@needs_botan
def test_botan_calls_keep_the_gil() -> None:
    """With the GIL released on each of a block's eight short calls, a digest beside one busy thread took 43 ms of
    wall time instead of 1.5 ms (docs/design.md): the library must be loaded as a PyDLL."""
    library = botan.load()
    assert library is not None and isinstance(library._lib, ctypes.PyDLL)


@needs_botan
def test_concurrent_hashes_do_not_share_a_key() -> None:
    """Botan's calls let go of the GIL and a cipher's key is state: each digest must have its own cipher."""
    inputs = [random.Random(n).randbytes(2000 + n) for n in range(64)]
    expected = [gost3411.gost34311(data, use_botan=False) for data in inputs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(gost3411.gost34311, inputs)) == expected


class WrongBotan:
    """A Botan build whose cipher answers wrongly (another S-box, a broken build)."""

    version = "Botan 0.0 (wrong)"

    def open(self) -> object:
        return object()

    def close(self, handle: object) -> None:
        pass

    def encipher(self, handle: object) -> botan.Encipher:
        return lambda h, keys: bytes(reversed(h))


def test_a_botan_that_fails_the_known_answer_is_not_used(monkeypatch: pytest.MonkeyPatch, fresh_choice: None,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(botan, "load", WrongBotan)
    assert gost3411.hash_implementation() == "Python"
    assert gost3411.gost34311(b"abc").hex() == KNOWN_DIGESTS[b"abc"]
    assert "gives a wrong GOST R 34.11-94 digest" in caplog.text


def test_without_botan_the_hash_runs_in_python(monkeypatch: pytest.MonkeyPatch, fresh_choice: None) -> None:
    monkeypatch.setattr(botan, "load", lambda: None)
    assert gost3411.hash_implementation() == "Python"
    assert gost3411.gost34311(b"message digest").hex() == KNOWN_DIGESTS[b"message digest"]


@needs_botan
def test_a_library_without_the_test_sbox_cipher_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botan, "CIPHER_NAME", b"GOST-28147-89(No_Such_Param)")
    assert botan.load() is None


class FailingBotan(WrongBotan):
    """A Botan build whose cipher calls fail (a code below zero) instead of answering."""

    def encipher(self, handle: object) -> botan.Encipher:
        def encipher(h: bytes, keys: bytes) -> bytes:
            raise OSError("Botan: GOST 28147-89 failed (code -1)")

        return encipher


def test_a_botan_whose_calls_fail_is_not_used(monkeypatch: pytest.MonkeyPatch, fresh_choice: None,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(botan, "load", FailingBotan)
    assert gost3411.hash_implementation() == "Python"
    assert gost3411.gost34311(b"abc").hex() == KNOWN_DIGESTS[b"abc"]
    assert "failed its GOST R 34.11-94 check" in caplog.text


@needs_botan
def test_a_failing_call_raises_instead_of_giving_a_wrong_digest() -> None:
    library = botan.load()
    assert library is not None
    encipher = library.encipher(ctypes.c_void_p())  # no cipher object: Botan answers BOTAN_FFI_ERROR_NULL_POINTER
    with pytest.raises(OSError, match="GOST 28147-89 failed"):
        encipher(bytes(32), bytes(128))
