"""Giving memory back to the system after a burst of large requests (glibc; elsewhere these do nothing).

A parsed envelope lives in lxml as many small C allocations. Freed, glibc keeps their pages in its heaps for
reuse, spread over up to eight arenas per core, so a worker that once parsed a burst of large bodies stayed at
its peak while idle (measured: 812 MB to 4.4 GB, held). At worker start the allocator gets the options below;
once the process goes idle after at least ``TRIM_AFTER_BYTES`` of request bodies, a background thread collects
the garbage cycles that still hold parsed trees (an exception's traceback refers back to its exchange) and asks
glibc to return its free pages (``malloc_trim``). A large request's own cycles are collected as it ends, so that
what the bytes-in-flight budget admits is also what is alive (``gateway/endpoints/admission.py``).
"""
from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
ALLOCATOR_OPTIONS = {
    # Fewer arenas: freed pages are shared by all threads instead of stranded in one thread's arena.
    _M_ARENA_MAX: 2,
    # A fixed threshold: a body or a provider answer above it is mmapped and unmapped when freed; glibc's
    # default threshold grows after the first large free and would keep the next ones in the heap.
    _M_MMAP_THRESHOLD: 256 * 1024,
}
TRIM_AFTER_BYTES = 8 * 1024 * 1024
# A request at least this large has its garbage cycles collected before its bytes go back to the budget: a parsed
# tree held by a cycle (an exception's traceback refers back to its exchange) would otherwise outlive the request
# until the collector happened to run, and the budget would bound nothing.
COLLECT_AFTER_BODY_BYTES = 1024 * 1024
IDLE_SECONDS = 0.5


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError on other C libraries
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


def tune_allocator() -> bool:
    """Apply :data:`ALLOCATOR_OPTIONS` (call at worker start, before threads allocate); False off glibc."""
    if _LIBC is None:
        return False
    return all(_LIBC.mallopt(option, value) == 1 for option, value in ALLOCATOR_OPTIONS.items())


def return_free_memory() -> None:
    """Collect garbage cycles, then hand the allocator's free pages back to the system."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class MemoryReturner:
    """Returns free memory once the process is idle after a burst: at least ``trim_after_bytes`` of request
    bodies handled since the last time, then nothing in flight for ``idle_seconds``."""

    def __init__(self, in_flight: Callable[[], int], trim_after_bytes: int = TRIM_AFTER_BYTES,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        self._in_flight = in_flight
        self._trim_after_bytes = trim_after_bytes
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._handled = 0
        self._last_activity = time.monotonic()
        self._due = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-returner", daemon=True)
        self._thread.start()

    def handled(self, body_bytes: int) -> None:
        """A request of ``body_bytes`` is over: what it built is freed now if it was large (call before its
        bytes go back to the budget)."""
        if body_bytes >= COLLECT_AFTER_BODY_BYTES:
            gc.collect()
        with self._lock:
            self._handled += body_bytes
            self._last_activity = time.monotonic()
            if self._handled >= self._trim_after_bytes:
                self._due.set()

    def close(self) -> None:
        """Stop the background thread."""
        self._stopped.set()
        self._due.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._due.wait()
            if self._wait_until_idle():
                with self._lock:
                    self._handled = 0
                    self._due.clear()
                started = time.monotonic()
                return_free_memory()
                log.debug("returned free memory to the system in %.1f ms", (time.monotonic() - started) * 1000)

    def _wait_until_idle(self) -> bool:
        while not self._stopped.is_set():
            with self._lock:
                quiet_for = time.monotonic() - self._last_activity
            if quiet_for >= self._idle_seconds and self._in_flight() == 0:
                return True
            self._stopped.wait(max(self._idle_seconds - quiet_for, 0.05))
        return False
