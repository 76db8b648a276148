"""Logging failures without flooding the log: one line per failure, one traceback per distinct failure per interval.

During a database outage every request fails the same way; a traceback per request (about 18 KB each) buried
everything else in the log. A failure is told apart from another by its exception type and the line that raised
it, so a new kind of failure still shows its traceback at once. Lines carry the exception's type and the first
line of its message only: SQLAlchemy's full text would add the statement (the engine hides its parameters too).
"""
from __future__ import annotations

import logging
import threading
import time
import traceback

from sqlalchemy.exc import DBAPIError

TRACEBACK_INTERVAL_SECONDS = 60.0
SUMMARY_CHARS = 300


def failure_summary(error: BaseException) -> str:
    """``Type: first line of the message`` (for a database error, the driver's own), cut to a readable length."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:SUMMARY_CHARS]


def _fingerprint(error: BaseException) -> tuple[str, str, int]:
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ is not None else []
    where = frames[-1] if frames else None
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return (type(cause).__qualname__, where.filename if where else "", (where.lineno or 0) if where else 0)


class FailureLog:
    """Logs failures on ``logger``: each one as a single line, with the traceback of each distinct failure at most
    once per ``interval_seconds``."""

    def __init__(self, logger: logging.Logger, interval_seconds: float = TRACEBACK_INTERVAL_SECONDS) -> None:
        self._logger = logger
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._shown_at: dict[tuple[str, str, int], float] = {}
        self._since_shown: dict[tuple[str, str, int], int] = {}

    def failed(self, error: BaseException, message: str, *args: object) -> None:
        """Log ``message % args`` with the failure's summary; with its traceback when this kind of failure has
        not shown one within the interval."""
        key = _fingerprint(error)
        now = time.monotonic()
        with self._lock:
            shown_at = self._shown_at.get(key)
            show = shown_at is None or now - shown_at >= self._interval
            if show:
                self._shown_at[key] = now
                repeated = self._since_shown.pop(key, 0)
            else:
                self._since_shown[key] = self._since_shown.get(key, 0) + 1
        summary = failure_summary(error)
        if show:
            note = f" ({repeated} more like it since its last traceback)" if repeated else ""
            self._logger.error(f"{message}: %s{note}", *args, summary, exc_info=error)
        else:
            self._logger.error(f"{message}: %s (traceback shown at most every %.0f s)", *args, summary, self._interval)
