"""SQLite's write-ahead log is checkpointed by a thread of its own, never inside a writer's commit (where it cost
every caller waiting on that commit 7–9 ms), and stays bounded while writers never pause."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway import wal_checkpoints
from gateway.db import make_engine
from tests.wire import wait_for

ROW = "x" * 2000


def write_rows(url: str, rows: int) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)"))
    for start in range(0, rows, 50):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO filler (body) VALUES (:body)"), [{"body": ROW}] * min(50, rows - start))
    engine.dispose()


def test_the_gateways_connections_leave_checkpoints_to_the_background_thread(tmp_path: Path) -> None:
    database = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
    # Well past the 1,000 pages at which a commit would have checkpointed the log itself.
    write_rows(f"sqlite:///{database}", 3000)
    with sqlite3.connect(database) as reader:
        assert reader.execute("SELECT count(*) FROM filler").fetchone()[0] == 3000
    # The background thread copies the log into the database file within a few rounds.
    wait_for(lambda: (lambda logged, copied: copied == logged)(*wal_frames_without_copying(database)), seconds=10)


def wal_frames_without_copying(database: Path) -> tuple[int, int]:
    """The log's frames and those copied, asked without copying any (a checkpoint that may not touch the file)."""
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA busy_timeout=0")
        _, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return logged, copied


def test_the_log_stays_bounded_while_writers_never_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wal_checkpoints, "MAX_LOG_BYTES", 1024 * 1024)
    database = tmp_path / "busy.db"
    url = f"sqlite:///{database}"
    write_rows(url, 10)
    stop = threading.Event()
    written = 0

    def writer() -> None:
        # Commit after commit with no pause between them, so a passive checkpoint never catches up.
        nonlocal written
        engine = make_engine(url)
        while not stop.is_set():
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO filler (body) VALUES (:body)"), [{"body": ROW}] * 2)
            written += 2 * len(ROW)
        engine.dispose()

    def wal_size() -> int:
        wal = Path(f"{database}-wal")
        return wal.stat().st_size if wal.exists() else 0

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.0)  # the log's file grows to what one checkpoint round lets through, and stays there
        size_before, written_before = wal_size(), written
        time.sleep(1.5)
        growth, written_meanwhile = wal_size() - size_before, written - written_before
    finally:
        stop.set()
        thread.join()
    # Once it outgrows the limit the log is started again from its beginning, so its file stops growing; without
    # the restart it would grow by every page written, more than the rows' own bytes.
    assert written_meanwhile > 8 * wal_checkpoints.MAX_LOG_BYTES, written_meanwhile
    assert growth < written_meanwhile / 2, (growth, written_meanwhile)
