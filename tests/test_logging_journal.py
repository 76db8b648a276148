"""The logging journal's group commit: concurrent writers each get every row in, exactly once."""
from __future__ import annotations

import threading
import time
import uuid

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from journals.logging_journal import JournalRecord, LoggingJournal
from journals.models import LoggingJournalEntry


def test_concurrent_writers_lose_and_duplicate_nothing(engine: Engine) -> None:
    journal = LoggingJournal(engine)
    marker = f"{{{uuid.uuid4()}}}"
    threads, per_thread = 12, 40

    def writer(index: int) -> None:
        for n in range(per_thread):
            journal.write([
                JournalRecord(channel="SYNC", state="DELIVERED", message_id=f"{index}-{n}-req", session_id=marker),
                JournalRecord(channel="SYNC", state="DELIVERED", message_id=f"{index}-{n}-resp", session_id=marker),
            ])

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a writer never came back"
    with Session(engine) as session:
        ids = list(session.scalars(select(LoggingJournalEntry.message_id).where(LoggingJournalEntry.session_id == marker)))
    assert len(ids) == len(set(ids)) == threads * per_thread * 2


def test_a_failed_commit_is_reported_to_every_writer_in_it(tmp_path) -> None:
    from sqlalchemy import text

    from gateway.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    migrate(engine)
    journal = LoggingJournal(engine)
    journal.write([JournalRecord(channel="SYNC", state="DELIVERED")])
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE journal_logging"))
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            journal.write([JournalRecord(channel="SYNC", state="DELIVERED")])
        except Exception as exc:  # noqa: BLE001 - the test collects whatever the journal raised
            errors.append(exc)

    workers = [threading.Thread(target=writer) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(errors) == 6
    engine.dispose()


def test_the_writer_takes_sqlites_write_lock_as_soon_as_another_process_lets_it_go(tmp_path) -> None:
    # SQLite's own busy handler sleeps 1, 2, 5 … 50, 100 ms between tries: a lock held 240 ms was taken ~90 ms after
    # it was let go, and against another process committing batch after batch the gaps were missed for longer still.
    import sqlite3

    from gateway.db import make_engine, migrate

    database = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)
    journal = LoggingJournal(engine)
    other_process = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other_process.execute("BEGIN IMMEDIATE")
    released_at: list[float] = []

    def let_go() -> None:
        time.sleep(0.24)
        released_at.append(time.monotonic())
        other_process.execute("COMMIT")

    holder = threading.Thread(target=let_go)
    holder.start()
    journal.write([JournalRecord(channel="SYNC", state="DELIVERED")])
    written_at = time.monotonic()
    holder.join()
    other_process.close()
    assert written_at - released_at[0] < 0.03, f"written {1000 * (written_at - released_at[0]):.0f} ms after the lock was free"
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000  # the connection's own wait is back
    engine.dispose()


def bad_records(engine: Engine) -> list[JournalRecord]:
    """Rows the database refuses: a NULL where a value is required, and (where the column length is enforced)
    a value longer than its column."""
    refused = [JournalRecord(channel=None, state="DELIVERED")]  # type: ignore[arg-type]
    if engine.dialect.name == "postgresql":
        refused.append(JournalRecord(channel="SYNC", state="DELIVERED", message_id="x" * 300))
    return refused


def test_a_bad_row_fails_only_its_own_writer(engine: Engine) -> None:
    journal = LoggingJournal(engine)
    marker = f"{{{uuid.uuid4()}}}"
    refused = bad_records(engine)
    start = threading.Barrier(16)
    failures: list[int] = []
    good_failures: list[BaseException] = []

    def writer(index: int) -> None:
        start.wait(timeout=30)
        for n in range(20):
            if index < 4:
                try:
                    journal.write([refused[n % len(refused)]])
                except Exception:  # noqa: BLE001 - the refusal is what this writer expects
                    failures.append(index)
                else:
                    raise AssertionError("a refused row was committed")
            else:
                try:
                    journal.write([JournalRecord(channel="SYNC", state="DELIVERED", message_id=f"{index}-{n}", session_id=marker)])
                except Exception as exc:  # noqa: BLE001 - collected for the assertion below
                    good_failures.append(exc)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a writer never came back"
    assert good_failures == []
    assert len(failures) == 4 * 20
    with Session(engine) as session:
        written = list(session.scalars(select(LoggingJournalEntry.message_id).where(LoggingJournalEntry.session_id == marker)))
    assert sorted(written) == sorted(f"{i}-{n}" for i in range(4, 16) for n in range(20))


class FlakyWrites:
    """A ``write_batch`` for GroupCommit: ``"slow"`` takes a moment (so that the items behind it gather in one
    batch); a batch holding ``"bad"`` is refused on a value and, with ``fail_after_bad``, the database is gone from
    then on. Records what it committed and how many transactions it was asked for."""

    def __init__(self, fail_after_bad: bool = False) -> None:
        self.committed: list[str] = []
        self.transactions = 0
        self.fail_after_bad = fail_after_bad
        self.down = False

    def __call__(self, _connection: object, items: list[str]) -> None:
        from sqlalchemy.exc import IntegrityError, OperationalError

        self.transactions += 1
        if "slow" in items:
            time.sleep(0.3)
        if self.down:
            raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))
        if "bad" in items:
            self.down = self.fail_after_bad
            raise IntegrityError("INSERT", {}, ValueError("null value in column"))
        self.committed += items


def submit_behind_a_slow_one(commits: object, items: list[str]) -> list[BaseException | None]:
    """Submit ``"slow"``, then ``items`` from as many threads while it commits: they share the next batch."""
    outcomes: list[BaseException | None] = [None] * len(items)

    def submit(index: int) -> None:
        try:
            commits.submit(items[index])
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            outcomes[index] = exc

    leader = threading.Thread(target=commits.submit, args=("slow",))
    leader.start()
    time.sleep(0.1)
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(items))]
    for thread in [*threads]:
        thread.start()
    for thread in [leader, *threads]:
        thread.join(timeout=30)
    return outcomes


ITEMS = ["bad" if i == 7 else f"good-{i}" for i in range(40)]


def test_a_batch_refused_on_one_value_is_committed_item_by_item(engine: Engine) -> None:
    from journals.group_commit import GroupCommit

    writes = FlakyWrites()
    outcomes = submit_behind_a_slow_one(GroupCommit(engine, writes), ITEMS)
    assert sorted(writes.committed) == sorted(["slow"] + [item for item in ITEMS if item != "bad"])
    assert [outcome is not None for outcome in outcomes] == [item == "bad" for item in ITEMS]


def test_when_the_database_fails_during_the_retry_the_rest_of_the_batch_fails_at_once(engine: Engine) -> None:
    from journals.group_commit import GroupCommit

    writes = FlakyWrites(fail_after_bad=True)
    outcomes = submit_behind_a_slow_one(GroupCommit(engine, writes), ITEMS)
    assert all(outcome is not None for outcome in outcomes) and writes.committed == ["slow"]
    # The slow one, the refused batch, the first item again: then nobody waits on a database that is gone.
    assert writes.transactions == 3


def test_coroutines_and_threads_share_the_writer_and_a_bad_row_fails_only_its_own_coroutine(engine: Engine) -> None:
    """Coroutines on one loop and threads write at once: nothing is lost or doubled, a refused row fails only the
    coroutine that wrote it, and the loop keeps running while the writer commits (a ticker counts its turns)."""
    import asyncio

    journal = LoggingJournal(engine)
    marker = f"{{{uuid.uuid4()}}}"
    refused = bad_records(engine)
    coroutines, per_coroutine, threads, per_thread = 200, 5, 4, 50

    def thread_writer(index: int) -> None:
        for n in range(per_thread):
            journal.write([JournalRecord(channel="SYNC", state="DELIVERED", message_id=f"t{index}-{n}", session_id=marker)])

    async def coroutine_writer(index: int) -> int:
        failed = 0
        for n in range(per_coroutine):
            if index % 50 == 0:
                try:
                    await journal.write_async([refused[n % len(refused)]])
                except Exception:  # noqa: BLE001 - the refusal is what this writer expects
                    failed += 1
            else:
                await journal.write_async([JournalRecord(channel="ASYNC", state="ACCEPTED", message_id=f"c{index}-{n}",
                                                         session_id=marker)])
        return failed

    async def everything() -> tuple[list[int], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        ticking = asyncio.create_task(ticker())
        failed = await asyncio.wait_for(asyncio.gather(*(coroutine_writer(i) for i in range(coroutines))), timeout=120)
        done.set()
        await ticking
        return failed, ticks

    workers = [threading.Thread(target=thread_writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    failed, ticks = asyncio.run(everything())
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a writer never came back"
    bad_writers = [i for i in range(coroutines) if i % 50 == 0]
    assert [failed[i] for i in bad_writers] == [per_coroutine] * len(bad_writers)
    assert sum(failed) == per_coroutine * len(bad_writers)
    assert ticks > 1, "the loop stood still while the journal was written"
    with Session(engine) as session:
        ids = list(session.scalars(select(LoggingJournalEntry.message_id).where(LoggingJournalEntry.session_id == marker)))
    expected = {f"c{i}-{n}" for i in range(coroutines) if i % 50 for n in range(per_coroutine)}
    expected |= {f"t{i}-{n}" for i in range(threads) for n in range(per_thread)}
    assert len(ids) == len(set(ids)) and set(ids) == expected
