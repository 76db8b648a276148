"""SQLite's write-ahead log checkpointed beside the writers, not by them.

By default the connection whose commit takes the log past 1,000 pages checkpoints it there and then: it copies the
pages into the database file and syncs it, some 7–9 ms on this project's machines (more while the disk is busy),
and every caller waiting on that commit waits with it: the group commit's writer, so every exchange of the
process. The gateway's connections turn that off (``wal_autocheckpoint=0``) and one thread per process and
database checkpoints instead: ``PASSIVE`` every ``INTERVAL_SECONDS`` (it never blocks a writer; pages written
meanwhile wait for the next round), and, should the log outgrow ``MAX_LOG_BYTES`` because writers never pause long
enough for a passive checkpoint to catch up, one ``RESTART`` (which holds writers back while it runs, the stall
the passive rounds otherwise avoid) so that the log starts again from its beginning.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 0.25
MAX_LOG_BYTES = 64 * 1024 * 1024
_started: set[Path] = set()
_lock = threading.Lock()


def checkpoint_in_background(database: Path) -> None:
    """Start this process's checkpointing thread for ``database`` (once per file; a daemon thread)."""
    database = database.resolve()
    with _lock:
        if database in _started:
            return
        _started.add(database)
    threading.Thread(target=_checkpoint_forever, args=(database,), name="sqlite-checkpoint", daemon=True).start()


def _checkpoint_forever(database: Path) -> None:
    wal = Path(f"{database}-wal")
    connection: sqlite3.Connection | None = None
    while True:
        time.sleep(INTERVAL_SECONDS)
        try:
            if connection is None:
                if not database.exists():  # the engine has not connected yet: never create the file here
                    continue
                connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA busy_timeout=30000")
            mode = "RESTART" if wal.exists() and wal.stat().st_size > MAX_LOG_BYTES else "PASSIVE"
            connection.execute(f"PRAGMA wal_checkpoint({mode})")
        except Exception as exc:  # noqa: BLE001 - whatever it was, the next round tries again: nothing else checkpoints
            log.debug("WAL checkpoint of %s skipped: %s", database, exc)
