"""The replay guard: concurrent checks share transactions (group commit) yet each learns exactly whether its own
message was seen within the window, on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

import gateway.security.replay as replay_module
from gateway.db import make_engine
from gateway.errors import ErrorCode, GatewayError
from gateway.security.replay import ReplayGuard, _Check
from gateway.store.models import SeenSignature

THREADS = 16


def unique(label: str) -> bytes:
    """A signature value no other test (nor an earlier run on a shared database) used."""
    return f"{label}-{os.urandom(12).hex()}".encode()


def accepted(guard: ReplayGuard, signature: bytes, sender: str = "sender", message_id: str | None = None) -> bool:
    try:
        guard.check(signature, sender, message_id)
    except GatewayError as error:
        assert error.error == ErrorCode.REPLAYED_MESSAGE
        return False
    return True


def all_at_once(count: int, work: Callable[[int], bool]) -> list[bool]:
    """Run ``work(i)`` in ``count`` threads released together; their results (bounded: every join times out)."""
    barrier = threading.Barrier(count)
    results: list[bool | BaseException | None] = [None] * count

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def test_concurrent_checks_of_the_same_signature_accept_exactly_one(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    for _ in range(5):
        signature = unique("same")
        assert sum(all_at_once(THREADS, lambda _index: accepted(guard, signature))) == 1


def test_concurrent_checks_of_the_same_message_id_accept_exactly_one(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    message_id = unique("message").decode()
    results = all_at_once(THREADS, lambda _index: accepted(guard, unique("resigned"), "sender", message_id))
    assert sum(results) == 1


def test_concurrent_distinct_messages_are_all_accepted(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    for _ in range(5):
        results = all_at_once(THREADS, lambda index: accepted(guard, unique(f"distinct{index}"), "sender", unique("m").decode()))
        assert all(results)


def test_a_message_seen_within_the_window_is_refused_and_accepted_again_once_expired(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=0.5)
    signature = unique("expiring")
    assert accepted(guard, signature)
    assert not accepted(guard, signature)
    time.sleep(0.7)
    assert accepted(guard, signature)  # the expired record does not count ...
    assert not accepted(guard, signature)  # ... and is renewed: seen again from now on


def test_an_expired_record_left_by_another_process_does_not_count(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=60)
    signature, live = unique("old"), unique("live")
    guard_digest = _digests(guard, signature)
    with engine.begin() as connection:
        connection.execute(
            insert(SeenSignature),
            [
                {"digest": guard_digest, "seen_at": datetime.now(UTC) - timedelta(seconds=61)},
                {"digest": _digests(guard, live), "seen_at": datetime.now(UTC) - timedelta(seconds=59)},
            ],
        )
    assert accepted(guard, signature)
    assert not accepted(guard, live)


def test_the_same_message_id_of_the_same_sender_is_refused_under_another_signature(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    message_id = unique("id").decode()
    assert accepted(guard, unique("first"), "pep", message_id)
    assert not accepted(guard, unique("second"), "pep", message_id)
    assert accepted(guard, unique("third"), "another-sender", message_id)


def test_within_one_batch_the_first_wins(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    msg_live, msg_1, msg_2 = (f"msg:{unique(n).decode()}" for n in ("live", "1", "2"))
    with engine.begin() as connection:
        guard._write_batch(connection, [_Check(msg_live)])
    batch = [_Check(msg_1), _Check(msg_1), _Check(msg_live), _Check(msg_2), _Check(msg_2)]
    with engine.begin() as connection:
        guard._write_batch(connection, batch)
    assert [check.replayed for check in batch] == [False, True, True, False, True]
    with engine.begin() as connection:
        recorded = set(connection.scalars(select(SeenSignature.digest).where(SeenSignature.digest.in_([msg_1, msg_2]))))
    assert recorded == {msg_1, msg_2}


def test_the_record_is_the_message_id_when_there_is_one_else_the_signature_value(engine: Engine) -> None:
    """Without a messageId the signature value is the record; with one, the messageId is (the same signature
    value verifies over the same Body, hence names the same messageId)."""
    guard = ReplayGuard(engine, window_seconds=900)
    signature = unique("no-id")
    assert accepted(guard, signature)
    assert not accepted(guard, signature)
    message_id = unique("id").decode()
    assert accepted(guard, signature, "pep", message_id)
    assert not accepted(guard, signature, "pep", message_id)


def test_a_refused_message_does_not_record_its_new_signature(engine: Engine) -> None:
    guard = ReplayGuard(engine, window_seconds=900)
    message_id, signature = unique("id").decode(), unique("fresh")
    assert accepted(guard, unique("original"), "pep", message_id)
    assert not accepted(guard, signature, "pep", message_id)
    assert accepted(guard, signature)  # the refused message left no record of its signature


def test_expired_records_are_pruned(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "PRUNE_EVERY", 3)
    guard = ReplayGuard(engine, window_seconds=60)
    stale = [f"sig:stale-{unique('p').decode()}"[:64] for _ in range(3)]
    with engine.begin() as connection:
        connection.execute(insert(SeenSignature), [{"digest": d, "seen_at": datetime.now(UTC) - timedelta(hours=2)} for d in stale])
    for _ in range(3):
        assert accepted(guard, unique("prune"))
    with engine.begin() as connection:
        left = connection.scalar(select(func.count()).select_from(SeenSignature).where(SeenSignature.digest.in_(stale)))
    assert left == 0


def test_a_database_failure_raises_instead_of_accepting(tmp_path: object) -> None:
    unmigrated = make_engine(f"sqlite:///{tmp_path}/empty.db")  # no table: every write fails
    try:
        guard = ReplayGuard(unmigrated, window_seconds=900)
        with pytest.raises(Exception) as raised:
            guard.check(b"signature", "sender", "message")
        assert not isinstance(raised.value, GatewayError)
        results = all_at_once(4, lambda index: _raises(lambda: guard.check(unique(str(index)), "sender", None)))
        assert all(results)
    finally:
        unmigrated.dispose()


def _raises(call: Callable[[], None]) -> bool:
    try:
        call()
    except GatewayError:
        return False
    except Exception:  # noqa: BLE001 - the database's error is what we expect
        return True
    return False


def _digests(guard: ReplayGuard, signature: bytes) -> str:
    """The digest the guard records for a message without a messageId: its signature value's."""
    captured: list[str] = []
    original = guard._batches.submit
    guard._batches.submit = lambda check: captured.append(check.digest)  # type: ignore[method-assign]
    try:
        guard.check(signature, "sender", None)
    finally:
        guard._batches.submit = original  # type: ignore[method-assign]
    return captured[0]


def test_a_failed_batch_does_not_stop_later_ones(tmp_path: object) -> None:
    """A batch that failed closes its connection; once the database is usable again, checks pass again."""
    from gateway.db import migrate

    engine = make_engine(f"sqlite:///{tmp_path}/late.db")
    try:
        guard = ReplayGuard(engine, window_seconds=900)
        assert _raises(lambda: guard.check(unique("early"), "sender", None))
        migrate(engine)
        assert accepted(guard, unique("later"))
    finally:
        engine.dispose()


def test_connections_go_back_to_the_pool_once_nobody_waits(engine: Engine) -> None:
    """Leaders hand their connection on while others wait, and return it when the queue is empty."""
    guard = ReplayGuard(engine, window_seconds=900)
    for _ in range(3):
        assert all(all_at_once(THREADS, lambda index: accepted(guard, unique(f"pool{index}"))))
        assert engine.pool.checkedout() == 0
