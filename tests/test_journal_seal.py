"""Tamper evidence: sealing, verification naming the first tampered row, archives verifying offline, sealing
beside live traffic, and the ``journals`` commands. Runs on SQLite and PostgreSQL (GATEWAY_DATABASE_URL)."""
from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, func, insert, select, text, update

from gateway.commands.journal_seal import journals_seal_group
from gateway.security.wssec import EnvelopeSigner
from journals.archive import ArchiveRefused, archive, verify_archive
from journals.logging_journal import JournalRecord, LoggingJournal
from journals.audit import AuditLogEntry, RegistrationJournalEntry
from journals.models import IncidentJournalEntry, JournalChainHead, JournalCheckpoint, LoggingJournalEntry
from journals.seal import seal
from journals.verify import verify
from tests.pki import participant

LOGGING = LoggingJournalEntry.__table__
INCIDENT = IncidentJournalEntry.__table__
CHECKPOINT = JournalCheckpoint.__table__


@pytest.fixture(scope="module")
def signer(gateway_key: tuple[Path, Path]) -> EnvelopeSigner:
    return EnvelopeSigner.load(gateway_key[0], gateway_key[1], None)


@pytest.fixture()
def journals(engine: Engine) -> Iterator[LoggingJournal]:
    """Empty journals and chains, and a journal writer."""
    with engine.begin() as connection:
        for table in (LOGGING, INCIDENT, AuditLogEntry.__table__, RegistrationJournalEntry.__table__, CHECKPOINT, JournalChainHead.__table__):
            connection.execute(delete(table))
    journal = LoggingJournal(engine)
    yield journal
    journal.close()


def write(journal: LoggingJournal, count: int, received_at: datetime | None = None) -> list[str]:
    """Append ``count`` journal rows; return their message ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    moment = received_at or datetime.now(UTC)
    journal.write([
        JournalRecord(channel="SYNC", state="DELIVERED", message_id=message_id, sender="pep", recipient="gbdfl",
                      service_id="GbdflPersonInfo", received_at=moment, sent_at=moment, duration_ms=1.25)
        for message_id in ids
    ])
    return ids


def row_ids(engine: Engine) -> dict[int, int]:
    """Logging journal ids by seq."""
    with engine.connect() as connection:
        return dict(connection.execute(select(LOGGING.c.seq, LOGGING.c.id).where(LOGGING.c.seq.is_not(None))).all())


def logging_problem(engine: Engine, trusted: list[bytes] | None = None) -> str | None:
    report = verify(engine, trusted or [])
    chain = next(c for c in report.chains if c.table == "journal_logging")
    return None if chain.problem is None else chain.problem.message


def test_sealed_journals_verify_and_later_rows_wait_unjudged(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 7)
    with engine.begin() as connection:
        connection.execute(insert(INCIDENT), [
            {"opened_at": datetime.now(UTC), "kind": "BREAKER_TRIPPED", "closed_at": datetime.now(UTC), "measures_taken": "restarted"},
            {"opened_at": datetime.now(UTC), "kind": "LATE_DELIVERY", "closed_at": None, "measures_taken": None},  # open: still being filled in, not sealed
        ])
    sealed = seal(engine, signer, batch_size=3)
    assert (sealed["journal_logging"], sealed["journal_incident"]) == (7, 1)
    assert sorted(row_ids(engine)) == [1, 2, 3, 4, 5, 6, 7]
    write(journals, 2)  # after the seal

    report = verify(engine, [signer.cert_pem])
    assert report.ok, report.problems
    by_table = {chain.table: chain for chain in report.chains}
    assert (by_table["journal_logging"].rows, by_table["journal_logging"].unsealed) == (7, 2)
    assert by_table["journal_logging"].checkpoints == 3  # batches of 3, 3, 1
    assert (by_table["journal_incident"].rows, by_table["journal_incident"].unsealed) == (1, 1)

    assert seal(engine, signer)["journal_logging"] == 2
    assert verify(engine).ok


def test_an_edited_row_is_named(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 5)
    seal(engine, signer)
    victim = row_ids(engine)[3]
    with engine.begin() as connection:
        connection.execute(text("UPDATE journal_logging SET state = 'REJECTED' WHERE id = :id"), {"id": victim})
    assert logging_problem(engine) == f"row at seq 3 (id {victim}) does not match the chain: edited (or rows reordered)"


def test_an_edit_with_recomputed_hashes_is_caught_by_the_checkpoint(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    """Whoever edits a row and recomputes every chain hash after it still cannot sign the checkpoint."""
    from journals.seal import GENESIS, link, row_content

    write(journals, 4)
    seal(engine, signer)
    with engine.begin() as connection:
        connection.execute(text("UPDATE journal_logging SET sender = 'mallory' WHERE seq = 2"))
        previous = GENESIS
        for row in connection.execute(select(LOGGING).order_by(LOGGING.c.seq)).mappings().all():
            previous = link(previous, "journal_logging", row["seq"], row_content(row))
            connection.execute(update(LOGGING).where(LOGGING.c.id == row["id"]).values(chain_hash=previous))
    assert logging_problem(engine) == "checkpoint at seq 4: does not match the chain at seq 4"


def test_a_deleted_row_is_named_by_the_gap(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 6)
    seal(engine, signer)
    ids = row_ids(engine)
    with engine.begin() as connection:
        connection.execute(delete(LOGGING).where(LOGGING.c.id == ids[4]))
    assert logging_problem(engine) == f"row(s) deleted: seq 4..4 missing after seq 3, before seq 5 (id {ids[5]})"


def test_deleted_newest_rows_are_caught_by_the_checkpoint(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 6)
    seal(engine, signer)
    with engine.begin() as connection:
        connection.execute(delete(LOGGING).where(LOGGING.c.seq >= 5))
    assert logging_problem(engine) == "row(s) deleted: seq 5..6 missing after seq 4 (a checkpoint covers up to seq 6)"


def test_swapped_rows_are_detected(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 5)
    seal(engine, signer)
    ids = row_ids(engine)
    with engine.begin() as connection:
        two, three = (connection.execute(select(LOGGING).where(LOGGING.c.id == ids[n])).mappings().one() for n in (2, 3))
        # Swap the two rows' contents (their places in the chain stay where they were).
        content = [name for name in two if name not in ("id", "seq", "chain_hash")]
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[2]).values({name: three[name] for name in content}))
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[3]).values({name: two[name] for name in content}))
    assert logging_problem(engine) == f"row at seq 2 (id {ids[2]}) does not match the chain: edited (or rows reordered)"

    # Swapping the rows' places in the chain instead (seq and hash with them) is caught too.
    with engine.begin() as connection:
        connection.execute(delete(LOGGING))
        connection.execute(delete(CHECKPOINT))
        connection.execute(delete(JournalChainHead.__table__))
    write(journals, 5)
    seal(engine, signer)
    ids = row_ids(engine)
    with engine.begin() as connection:
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[2]).values(seq=-2))
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[3]).values(seq=2))
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[2]).values(seq=3))
    assert logging_problem(engine) == f"row at seq 2 (id {ids[3]}) does not match the chain: edited (or rows reordered)"


def test_a_forged_checkpoint_signature_is_detected(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    write(journals, 3)
    seal(engine, signer)
    with engine.begin() as connection:
        connection.execute(update(CHECKPOINT).values(signature="AAAA" + "A" * 340))
    assert logging_problem(engine) == "checkpoint at seq 3: signature invalid"


def test_a_checkpoint_signed_by_another_key_is_refused_when_the_signer_is_pinned(
    engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner
) -> None:
    write(journals, 3)
    key, cert = participant("990140000077")
    seal(engine, EnvelopeSigner.from_pem(key, cert))
    assert logging_problem(engine) is None  # validly signed by *a* key
    problem = logging_problem(engine, [signer.cert_pem])
    assert problem is not None and problem.startswith("checkpoint at seq 3: signed by an untrusted certificate")


def test_archive_moves_old_rows_to_a_file_that_verifies_offline(
    engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner, tmp_path: Path
) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    write(journals, 5, received_at=old)
    seal(engine, signer, batch_size=2)
    write(journals, 3)  # recent
    seal(engine, signer)
    results = archive(engine, signer, datetime.now(UTC) - timedelta(days=30), tmp_path)
    assert [(r.table, r.first_seq, r.last_seq) for r in results] == [("journal_logging", 1, 5)]
    with engine.connect() as connection:
        assert sorted(connection.scalars(select(LOGGING.c.seq))) == [6, 7, 8]
    assert verify(engine, [signer.cert_pem]).ok

    file_report = verify_archive(results[0].path, [signer.cert_pem])
    assert file_report.ok, file_report.problems
    assert (file_report.chains[0].rows, file_report.chains[0].last_seq) == (5, 5)

    # A second archive continues the chain; its file is attested by the first one's checkpoint.
    second = archive(engine, signer, datetime.now(UTC) + timedelta(days=1), tmp_path)
    assert [(r.first_seq, r.last_seq) for r in second] == [(6, 8)]
    assert verify_archive(second[0].path, [signer.cert_pem]).ok
    write(journals, 2)
    seal(engine, signer)
    assert verify(engine, [signer.cert_pem]).ok

    # An edited archive file is caught offline.
    lines = results[0].path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[2])
    row["row"]["state"] = "REJECTED"
    lines[2] = json.dumps(row)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert verify_archive(tampered).problems[0].message == "archive checkpoint: the file's contents differ from what was signed"


def test_archive_refuses_a_tampered_chain(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner, tmp_path: Path) -> None:
    write(journals, 3, received_at=datetime.now(UTC) - timedelta(days=40))
    seal(engine, signer)
    with engine.begin() as connection:
        connection.execute(text("UPDATE journal_logging SET recipient = 'x' WHERE seq = 2"))
    with pytest.raises(ArchiveRefused, match="seq 2"):
        archive(engine, signer, datetime.now(UTC), tmp_path)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(LOGGING)) == 3


def test_sealing_does_not_hold_up_traffic(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    stop, written, errors = threading.Event(), [0], []

    def traffic() -> None:
        try:
            while not stop.is_set() and written[0] < 3000:
                write(journals, 10)
                written[0] += 10
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    writers = [threading.Thread(target=traffic) for _ in range(2)]
    for writer in writers:
        writer.start()
    sealed = 0
    for _ in range(20):
        sealed += seal(engine, signer, batch_size=50)["journal_logging"]
    stop.set()
    for writer in writers:
        writer.join(timeout=60)
    assert not errors and not any(w.is_alive() for w in writers)
    sealed += seal(engine, signer)["journal_logging"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(LOGGING)) == sealed == written[0] > 0
    report = verify(engine)
    assert report.ok, report.problems


def test_commands(engine: Engine, journals: LoggingJournal, database_url: str, gateway_key: tuple[Path, Path], tmp_path: Path) -> None:
    env = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_SIGNING_KEY": str(gateway_key[0]),
           "GATEWAY_SIGNING_CERT": str(gateway_key[1]), "GATEWAY_ARCHIVE_DIR": str(tmp_path)}
    runner = CliRunner()
    write(journals, 4, received_at=datetime.now(UTC) - timedelta(days=10))
    result = runner.invoke(journals_seal_group, ["seal"], env=env)
    assert result.exit_code == 0 and "journal_logging: 4 rows sealed" in result.output

    result = runner.invoke(journals_seal_group, ["verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "journal_logging: OK, 4 rows, seq 1..4, 1 checkpoints verified, 0 not sealed yet" in result.output

    result = runner.invoke(journals_seal_group, ["archive", "--before", (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%d")], env=env)
    assert result.exit_code == 0, result.output
    files = list(tmp_path.glob("journal_logging-*.jsonl"))
    assert len(files) == 1 and "seq 1..4" in result.output
    result = runner.invoke(journals_seal_group, ["verify", "--archive", str(files[0])], env={"GATEWAY_SIGNING_CERT": str(gateway_key[1])})
    assert result.exit_code == 0 and "journal_logging: OK, 4 rows" in result.output

    write(journals, 2)
    runner.invoke(journals_seal_group, ["seal"], env=env)
    with engine.begin() as connection:
        connection.execute(text("UPDATE journal_logging SET service_id = 'other' WHERE seq = 6"))
    result = runner.invoke(journals_seal_group, ["verify"], env=env)
    assert result.exit_code == 1
    assert "journal_logging: TAMPERED: row at seq 6" in result.output

    result = runner.invoke(journals_seal_group, ["seal"], env={"GATEWAY_DATABASE_URL": database_url, "GATEWAY_SIGNING_KEY": ""})
    assert result.exit_code != 0


def test_the_scheduled_job_seals_in_the_background(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner) -> None:
    import time

    from apscheduler.schedulers.background import BackgroundScheduler

    from journals.seal import schedule_sealing

    assert not schedule_sealing(BackgroundScheduler(), engine, None, 0.1)  # no key: nothing scheduled
    scheduler = BackgroundScheduler()
    assert schedule_sealing(scheduler, engine, signer, 0.1)
    write(journals, 3)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(row_ids(engine)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert sorted(row_ids(engine)) == [1, 2, 3]
    assert verify(engine).ok


# Stored values each database keeps but its driver cannot read back: (table, column, SQL value, what the report says).
UNREADABLE_VALUES = {
    "sqlite": [
        ("journal_logging", "received_at", "'yesterday'", "cannot read received_at (Invalid isoformat string: 'yesterday')"),
        ("journal_logging", "sender", "CAST(x'ff' AS TEXT)", "cannot read sender (Could not decode to UTF-8"),
        ("journal_audit", "after", "'{not json'", "cannot read after (Expecting property name"),
        ("journal_audit", "after", "'\"\\ud800\"'", "cannot hash a stored value ("),
    ],
    "postgresql": [
        ("journal_logging", "received_at", "'infinity'", "cannot read received_at (timestamp too large (after year 10K)"),
        ("journal_logging", "sent_at", "'0001-01-01 BC'", "cannot read sent_at (timestamp too small (before year 1)"),
    ],
}


def audit_rows(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        connection.execute(insert(AuditLogEntry.__table__), [
            {"at": datetime.now(UTC), "actor": "test", "operation": "CREATE", "entity": "services", "entity_key": f"S{n}",
             "after": {"key": f"S{n}"}}
            for n in range(count)
        ])


# The suite's database, as tests/conftest.py chooses it.
DIALECT = "postgresql" if os.environ.get("GATEWAY_DATABASE_URL", "").startswith("postgresql") else "sqlite"


@pytest.mark.parametrize(("table", "column", "value", "expected"), UNREADABLE_VALUES[DIALECT],
                         ids=[f"{table}.{column}={value}" for table, column, value, _ in UNREADABLE_VALUES[DIALECT]])
def test_a_stored_value_that_cannot_be_read_back_is_named_as_that_rows_mismatch(
    engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner, database_url: str, gateway_key: tuple[Path, Path],
    table: str, column: str, value: str, expected: str,
) -> None:
    write(journals, 4)
    audit_rows(engine, 4)
    seal(engine, signer)
    with engine.begin() as connection:
        victim = connection.scalar(text(f"SELECT id FROM {table} WHERE seq = 3"))
        connection.execute(text(f"UPDATE {table} SET {column} = {value} WHERE seq = 3"))

    problem = next(p for p in verify(engine).problems if p.table == table)
    assert (problem.kind, problem.seq, problem.row_id) == ("EDITED", 3, victim)
    assert problem.message.startswith(f"row at seq 3 (id {victim}) does not match the chain: {expected}"), problem.message

    env = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_SIGNING_CERT": str(gateway_key[1])}
    result = CliRunner().invoke(journals_seal_group, ["verify"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{table}: TAMPERED: row at seq 3 (id {victim}) does not match the chain: {expected}" in result.output


def test_sealing_waits_at_a_row_it_cannot_read_and_archiving_refuses_it(
    engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(journals, 4, received_at=datetime.now(UTC) - timedelta(days=10))
    value = "'yesterday'" if engine.dialect.name == "sqlite" else "'infinity'"
    ids = sorted(row_ids_unsealed(engine))
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE journal_logging SET received_at = {value} WHERE id = :id"), {"id": ids[2]})
    assert seal(engine, signer)["journal_logging"] == 2  # the rows before it; none skipped
    assert f"journal_logging row id {ids[2]} cannot be sealed: cannot read received_at" in caplog.text
    report = verify(engine)
    assert report.ok and next(c for c in report.chains if c.table == "journal_logging").unsealed == 2

    with engine.begin() as connection:  # repaired: sealing goes on
        connection.execute(update(LOGGING).where(LOGGING.c.id == ids[2]).values(received_at=datetime.now(UTC) - timedelta(days=10)))
    assert seal(engine, signer)["journal_logging"] == 2
    with engine.begin() as connection:  # broken again once sealed: archiving refuses to carry it into a signed file
        connection.execute(text(f"UPDATE journal_logging SET sent_at = {value} WHERE id = :id"), {"id": ids[1]})
    with pytest.raises(ArchiveRefused, match=rf"journal_logging: row at seq 2 \(id {ids[1]}\) does not match the chain: cannot read sent_at"):
        archive(engine, signer, datetime.now(UTC) - timedelta(days=5), tmp_path)
    assert not list(tmp_path.glob("*.jsonl"))


def row_ids_unsealed(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.scalars(select(LOGGING.c.id).where(LOGGING.c.seq.is_(None))))


def test_a_checkpoint_whose_values_cannot_be_read_back_is_named(engine: Engine, journals: LoggingJournal, signer: EnvelopeSigner, tmp_path: Path) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("only SQLite lets text into a number column")
    write(journals, 3, received_at=datetime.now(UTC) - timedelta(days=10))
    seal(engine, signer)
    with engine.begin() as connection:
        checkpoint = connection.scalar(select(CHECKPOINT.c.id).where(CHECKPOINT.c.table_name == "journal_logging"))
        connection.execute(text("UPDATE journal_checkpoint SET last_seq = 'three' WHERE id = :id"), {"id": checkpoint})
    assert logging_problem(engine) == f"checkpoint id {checkpoint}: last_seq of the wrong kind"
    with pytest.raises(ArchiveRefused, match=f"checkpoint id {checkpoint}: last_seq of the wrong kind"):
        archive(engine, signer, datetime.now(UTC) - timedelta(days=5), tmp_path)
