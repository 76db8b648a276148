"""Adapters are coroutines on an event loop; these tests call them from plain (and threaded) test code through a
loop of their own running in a thread, as a server's loop would run them."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


class LoopThread:
    """An event loop in a thread: :meth:`run` runs a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Result], timeout: float = 60.0) -> Result:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class BlockingAdapter:
    """An adapter whose ``handle`` and ``poll`` are called from test code and run on ``loop``; anything else is
    the adapter's own."""

    def __init__(self, adapter: Any, loop: LoopThread) -> None:
        self.adapter = adapter
        self._loop = loop

    def handle(self, *args: Any, **kwargs: Any) -> Any:
        return self._loop.run(self.adapter.handle(*args, **kwargs))

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        return self._loop.run(self.adapter.poll(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)
