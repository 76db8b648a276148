"""Leader-based group commit: many threads' and coroutines' small writes share one transaction.

A caller that finds no commit in progress becomes the leader and commits its own item together with every item
handed in meanwhile; callers arriving during that commit wait and are committed in the next batch, led by the
first of them. Alone, a caller just commits its own item; under load many items share one commit (one round
trip, one fsync, no lock contention on SQLite). :meth:`GroupCommit.submit` returns only once its item is
committed, and raises if the transaction holding it failed.

A leader hands its database connection on to the next leader with the lead, and returns it to the pool only
when nobody is waiting: under load, batch after batch runs on one connection instead of checking one out and
resetting it for each (about 0.04 ms a batch, half the CPU of an empty transaction on SQLite). A batch that
fails closes its connection, whatever state the failure left it in; the next batch takes a fresh one.

A coroutine (:meth:`GroupCommit.submit_async`) never leads: the loop must not wait on the database. When its item
would make it the leader, the process's one writer thread leads in its place, and a batch's leader hands the lead
to that thread whenever the next in line is a coroutine. So under load on an event loop, one thread per process
writes every batch, and each coroutine's future settles when the batch holding its item is committed.

A batch that fails on a value (a constraint, a value a column refuses) is written again item by item, so only
the item at fault fails: one caller's bad input never costs the others their commit. A batch that fails because
of the database itself (unreachable, locked) fails every item in it at once.

On SQLite a batch takes the write lock first, asking for it every ``LOCK_POLL_SECONDS`` while another process
holds it. SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms), and against another
process committing batch after batch it missed gap after gap: with two server processes on one file, a tenth of a
second and more went by before a batch got its turn (p99 of accepts 700–840 ms, 32 ms with one process).
"""
from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

Item = TypeVar("Item")
MAX_ITEMS_PER_COMMIT = 200
LOCK_POLL_SECONDS = 0.0005
LOCK_WAIT_SECONDS = 30.0  # as long as the connections' busy_timeout


@dataclass
class _Pending(Generic[Item]):
    item: Item
    wake: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    lead: bool = False
    error: BaseException | None = None
    connection: Connection | None = None  # handed over with the lead
    future: asyncio.Future[None] | None = None  # a coroutine's, settled on its loop once committed


def _settle(settled: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in settled:
        if future.done():  # its awaiter was cancelled (the client went away); the item was committed all the same
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class GroupCommit(Generic[Item]):
    """Commits items in batches; ``write_batch`` writes a batch's items on one connection, in one transaction."""

    def __init__(self, engine: Engine, write_batch: Callable[[Connection, list[Item]], None]) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._lock = threading.Lock()
        self._waiting: list[_Pending[Item]] = []
        self._committing = False
        self._writer_leads: queue.SimpleQueue[_Pending[Item]] | None = None  # made with the writer thread

    def submit(self, item: Item) -> None:
        """Commit ``item`` (possibly with others' items); raise if its transaction failed."""
        mine = _Pending(item)
        with self._lock:
            self._waiting.append(mine)
            mine.lead = not self._committing
            self._committing = True
        if not mine.lead:
            mine.wake.wait()  # woken either committed, or promoted to lead the next batch
        if mine.lead:
            self._lead(mine)
        if mine.error is not None:
            raise mine.error

    async def submit_async(self, item: Item) -> None:
        """Commit ``item`` (possibly with others' items) without blocking the running loop; raise if its
        transaction failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mine = _Pending(item, future=future)
        with self._lock:
            self._waiting.append(mine)
            lead = not self._committing
            self._committing = True
        if lead:
            self._writer().put(mine)
        await future

    def _writer(self) -> queue.SimpleQueue[_Pending[Item]]:
        """The queue of leads the writer thread takes on behalf of coroutines (the thread started on first use)."""
        with self._lock:
            if self._writer_leads is None:
                self._writer_leads = queue.SimpleQueue()
                threading.Thread(target=self._write_forever, args=(self._writer_leads,), name="group-commit", daemon=True).start()
            return self._writer_leads

    def _write_forever(self, leads: queue.SimpleQueue[_Pending[Item]]) -> None:
        while True:
            self._lead(leads.get())

    @staticmethod
    def _wake(batch: list[_Pending[Item]]) -> None:
        """Wake a batch's threads, and settle its coroutines' futures with one call per loop (each call from
        another thread wakes that loop once)."""
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for pending in batch:
            if pending.future is None:
                pending.wake.set()
            else:
                settled.setdefault(pending.future.get_loop(), []).append((pending.future, pending.error))
        for loop, futures in settled.items():
            # A loop closed meanwhile has nobody left awaiting; the writer thread must go on for the others.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures)

    def _lead(self, mine: _Pending[Item]) -> None:
        """Commit batches until ``mine`` is committed, then hand leadership (and the connection) to the next
        waiter, if any."""
        connection, mine.connection = mine.connection, None
        while not mine.committed:
            with self._lock:
                batch, self._waiting = self._waiting[:MAX_ITEMS_PER_COMMIT], self._waiting[MAX_ITEMS_PER_COMMIT:]
            connection, error = self._commit(connection, [pending.item for pending in batch])
            if error is not None and len(batch) > 1 and is_row_specific(error):
                # One item's bad value must not fail the others: each goes again in a transaction of its own,
                # until the database itself fails, which would fail every item left alike.
                database_failure: BaseException | None = None
                for pending in batch:
                    if database_failure is not None:
                        pending.error = database_failure
                        continue
                    connection, pending.error = self._commit(connection, [pending.item])
                    if pending.error is not None and not is_row_specific(pending.error):
                        database_failure = pending.error
            else:
                for pending in batch:
                    pending.error = error
            for pending in batch:
                pending.committed = True
            self._wake(batch)
        with self._lock:
            successor = self._waiting[0] if self._waiting else None
            self._committing = successor is not None
        if successor is None:
            if connection is not None:
                connection.close()
            return
        successor.connection = connection
        successor.lead = True
        if successor.future is not None:  # a coroutine never leads: the writer thread leads for it
            self._writer().put(successor)
        else:
            successor.wake.set()

    def _commit(self, connection: Connection | None, items: list[Item]) -> tuple[Connection | None, BaseException | None]:
        """Write ``items`` in one transaction; the connection to go on with (None after a failure) and the error."""
        try:
            if connection is None:
                connection = self._engine.connect()
            with connection.begin():
                if connection.dialect.name == "sqlite":
                    take_write_lock(connection)
                self._write_batch(connection, items)
        except Exception as exc:
            if connection is not None:
                connection.close()
            return None, exc
        return connection, None


def take_write_lock(connection: Connection) -> None:
    """Begin the SQLite transaction on ``connection`` holding the write lock, asking every ``LOCK_POLL_SECONDS``
    until it is free (at most ``LOCK_WAIT_SECONDS``, then the database's "locked" error). Straight on the driver's
    connection: three statements a batch through SQLAlchemy cost more than the batch's own rows."""
    driver = connection.connection.driver_connection
    if "busy_timeout" not in connection.info:  # the connection's own wait, restored after the lock is taken
        connection.info["busy_timeout"] = driver.execute("PRAGMA busy_timeout").fetchone()[0]
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    driver.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(LOCK_POLL_SECONDS)
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(connection.info['busy_timeout'])}")


def is_row_specific(error: BaseException) -> bool:
    """Whether ``error`` may come from one item's values (a constraint, a value the column refuses) rather than
    from the database itself (unreachable, locked, timed out), which would fail every item alike and is not worth
    retrying item by item."""
    if isinstance(error, (OperationalError, InterfaceError, TimeoutError)):
        return False
    return not (isinstance(error, DBAPIError) and error.connection_invalidated)


class MultiRowInsert:
    """``INSERT … VALUES (…), (…)`` for one table in the driver's own SQL: one statement and one round trip
    per batch, where a Core executemany costs the PostgreSQL driver a pipeline per call (about 40 % more CPU)."""

    ROWS_PER_STATEMENT = 50  # 50 rows x ~20 columns stays under every SQLite's bound-variable limit

    def __init__(self, engine: Engine, table: object) -> None:
        dialect = engine.dialect
        columns = [column for column in table.columns if not (column.primary_key and column.autoincrement is not False)]
        self._table_name = table.name
        self._columns = [column.name for column in columns]
        self._converters = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
        self._placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self._statements: dict[int, str] = {}

    def _statement(self, count: int) -> str:
        if count not in self._statements:
            group = "(" + ", ".join([self._placeholder] * len(self._columns)) + ")"
            self._statements[count] = (
                f"INSERT INTO {self._table_name} ({', '.join(self._columns)}) VALUES " + ", ".join([group] * count)
            )
        return self._statements[count]

    def execute(self, connection: Connection, rows: list[dict[str, object]]) -> None:
        """Insert ``rows`` (dicts keyed by column name; missing keys are NULL)."""
        for start in range(0, len(rows), self.ROWS_PER_STATEMENT):
            chunk = rows[start : start + self.ROWS_PER_STATEMENT]
            values = []
            for row in chunk:
                for name, convert in zip(self._columns, self._converters, strict=True):
                    value = row.get(name)
                    values.append(convert(value) if convert is not None and value is not None else value)
            connection.exec_driver_sql(self._statement(len(chunk)), tuple(values))
