"""Fixtures of the adapter tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adapters.looped import LoopThread


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """The event loop the module's adapters and their HTTP clients run on."""
    loop = LoopThread()
    yield loop
    loop.close()
