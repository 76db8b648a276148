"""Verifying the journals' hash chains and checkpoints (docs/tamper-evidence.md).

:func:`verify` recomputes every chain from the stored rows, from its start (or the last archived row) through the
newest checkpoint, checks every checkpoint's signature, and names the first row that was edited, deleted or
reordered. A stored value that cannot even be read back is that row's mismatch, never a crash.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, select

from journals.models import JournalCheckpoint
from journals.seal import (
    ARCHIVE,
    CHAINED_TABLES,
    GENESIS,
    SEAL,
    ChainedTable,
    Checkpoint,
    certificate_fingerprint,
    checkpoint_problem,
    link,
    row_content,
)
from journals.stored import read_rows


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain, naming the row (or checkpoint) where it shows."""

    table: str
    kind: str  # EDITED, DELETED, REORDERED, CHECKPOINT
    message: str
    seq: int | None = None
    row_id: int | None = None


@dataclass
class ChainReport:
    """What verifying one chain found."""

    table: str
    first_seq: int = 0  # first seq held (in the database or the file)
    last_seq: int = 0  # last seq covered by a checkpoint
    rows: int = 0
    checkpoints: int = 0
    unsealed: int = 0  # rows not sealed yet: not an error
    problem: Problem | None = None

    def summary(self) -> str:
        """One line for the command line."""
        if self.problem is not None:
            return f"{self.table}: TAMPERED: {self.problem.message}"
        if self.rows == 0:
            span = "no sealed rows"
        else:
            span = f"{self.rows} rows, seq {self.first_seq}..{self.last_seq}"
        return f"{self.table}: OK, {span}, {self.checkpoints} checkpoints verified, {self.unsealed} not sealed yet"


@dataclass
class VerifyReport:
    """The result of :func:`verify` or :func:`journals.archive.verify_archive`."""

    chains: list[ChainReport] = field(default_factory=list)
    signer_pinned: bool = False

    @property
    def ok(self) -> bool:
        """True when no chain has a problem."""
        return all(chain.problem is None for chain in self.chains)

    @property
    def problems(self) -> list[Problem]:
        """The first problem of each chain that has one."""
        return [chain.problem for chain in self.chains if chain.problem is not None]


@dataclass(frozen=True)
class ChainRow:
    """A sealed row as verification reads it; ``unreadable`` says which stored values could not be read back
    (the row is then judged edited, its content unknown)."""

    seq: int
    row_id: int | None
    chain_hash: str | None
    content: Mapping[str, Any]
    unreadable: str | None = None


def check_chain(
    report: ChainReport,
    rows: Iterable[ChainRow],
    start_seq: int,
    start_hash: str,
    checkpoints: Sequence[Checkpoint],
    trusted: frozenset[str] | None,
) -> str:
    """Walk ``rows`` (in seq order) from the chain point (``start_seq``, ``start_hash``), recomputing each hash and
    checking each checkpoint when the walk reaches its last seq; record the first problem in ``report`` and
    return the last hash reached. Shared by database and archive verification."""
    pending = sorted(checkpoints, key=lambda c: c.last_seq)
    expected, previous, index = start_seq + 1, start_hash, 0
    for row in rows:
        where = f"seq {row.seq} (id {row.row_id})"
        if row.seq < expected:
            report.problem = Problem(report.table, "REORDERED", f"row id {row.row_id} repeats seq {row.seq}: rows reordered or copied", row.seq, row.row_id)
            return previous
        if row.seq > expected:
            message = f"row(s) deleted: seq {expected}..{row.seq - 1} missing after seq {expected - 1}, before {where}"
            report.problem = Problem(report.table, "DELETED", message, expected - 1, row.row_id)
            return previous
        computed, unreadable = _chain_hash(previous, report.table, row)
        if computed is None or computed != row.chain_hash:
            message = f"row at {where} does not match the chain: {unreadable or 'edited (or rows reordered)'}"
            report.problem = Problem(report.table, "EDITED", message, row.seq, row.row_id)
            return previous
        report.rows += 1
        report.first_seq = report.first_seq or row.seq
        previous, expected = computed, expected + 1
        while index < len(pending) and pending[index].last_seq <= row.seq:
            checkpoint = pending[index]
            problem = checkpoint_problem(checkpoint, trusted)
            if problem is None and (checkpoint.last_seq != row.seq or checkpoint.last_hash != computed):
                problem = f"does not match the chain at seq {checkpoint.last_seq}"
            if problem is not None:
                report.problem = Problem(report.table, "CHECKPOINT", f"checkpoint at seq {checkpoint.last_seq}: {problem}", checkpoint.last_seq, row.row_id)
                return previous
            report.checkpoints += 1
            report.last_seq = row.seq
            index += 1
    if index < len(pending):
        last = pending[-1]
        message = f"row(s) deleted: seq {expected}..{last.last_seq} missing after seq {expected - 1} (a checkpoint covers up to seq {last.last_seq})"
        report.problem = Problem(report.table, "DELETED", message, expected - 1)
    return previous


def _chain_hash(previous: str, table_name: str, row: ChainRow) -> tuple[str | None, str | None]:
    """``row``'s chain hash after ``previous``; or None, and why, when its stored values could not be read back
    or hashed."""
    if row.unreadable is not None:
        return None, row.unreadable
    try:
        return link(previous, table_name, row.seq, row.content), None
    except ValueError as error:  # a value read back that no text encoding holds (a lone surrogate in JSON)
        return None, f"cannot hash a stored value ({error})"


# What each stored checkpoint column must hold for the checkpoint to be judged at all.
_CHECKPOINT_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": int, "table_name": str, "kind": str, "first_seq": int, "last_seq": int, "last_hash": str, "created_at": str,
    "signature": str, "certificate": str, "archive_name": (str, type(None)), "archive_sha256": (str, type(None)),
}


class CorruptCheckpoint(Exception):
    """A stored checkpoint whose values cannot be read back as a checkpoint."""


def stored_checkpoints(connection: Connection, table_name: str) -> list[Checkpoint]:
    """``table_name``'s checkpoints in ``last_seq`` order; :class:`CorruptCheckpoint` names one that cannot be
    read back (a value the driver cannot decode, or of the wrong kind: text in a number column on SQLite)."""
    table = JournalCheckpoint.__table__
    checkpoints = []
    for stored in read_rows(connection, select(table).where(table.c.table_name == table_name), [table.c.id]):
        values = stored.values or {}
        wrong = [name for name, kind in _CHECKPOINT_TYPES.items()
                 if not isinstance(values.get(name), kind) or isinstance(values.get(name), bool)]
        if stored.problem is not None or wrong:
            problem = stored.problem or f"{', '.join(wrong)} of the wrong kind"
            raise CorruptCheckpoint(f"checkpoint id {stored.key[0]}: {problem}")
        checkpoints.append(Checkpoint.from_mapping(values))
    return sorted(checkpoints, key=lambda checkpoint: (checkpoint.last_seq, checkpoint.id or 0))


def sealed_rows(connection: Connection, table: Table, after_seq: int, up_to_seq: int) -> Iterator[ChainRow]:
    """``table``'s rows with ``after_seq`` < seq <= ``up_to_seq`` in chain order, unreadable ones included."""
    query = select(table).where(table.c.seq > after_seq, table.c.seq <= up_to_seq)
    for stored in read_rows(connection, query, [table.c.seq, table.c.id]):
        seq, row_id = stored.key
        if stored.values is None:
            yield ChainRow(seq, row_id, None, {}, stored.problem)
        else:
            yield ChainRow(seq, row_id, stored.values["chain_hash"], row_content(stored.values))


def verify(engine: Engine, trusted_certificates: Sequence[bytes] = ()) -> VerifyReport:
    """Verify every chained journal in the database: the chain from its start (seq 1, or the last archived row
    attested by an ARCHIVE checkpoint) through the newest checkpoint, and every checkpoint's signature (and
    signer, when ``trusted_certificates`` pins it). Rows sealed after the checkpoints were read, and rows not
    sealed yet, are counted, not judged."""
    trusted = frozenset(certificate_fingerprint(pem) for pem in trusted_certificates) or None
    report = VerifyReport(signer_pinned=trusted is not None)
    # One snapshot for the checkpoints and the rows (PostgreSQL): an archive running meanwhile must not look like
    # deleted rows. SQLite's read transaction is a snapshot already.
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**snapshot) as connection, connection.begin():
        for chained in CHAINED_TABLES:
            report.chains.append(_verify_table(connection, chained, trusted))
    return report


def _verify_table(connection: Connection, chained: ChainedTable, trusted: frozenset[str] | None) -> ChainReport:
    table = chained.table
    chain = ChainReport(chained.name)
    try:
        checkpoints = stored_checkpoints(connection, chained.name)
    except CorruptCheckpoint as corrupt:
        chain.problem = Problem(chained.name, "CHECKPOINT", str(corrupt))
        return chain
    archived = [c for c in checkpoints if c.kind == ARCHIVE]
    start_seq, start_hash = 0, GENESIS
    if archived:
        base = max(archived, key=lambda c: c.last_seq)
        problem = checkpoint_problem(base, trusted)
        if problem is not None:
            chain.problem = Problem(chained.name, "CHECKPOINT", f"archive checkpoint at seq {base.last_seq}: {problem}", base.last_seq)
            return chain
        start_seq, start_hash = base.last_seq, base.last_hash
        chain.last_seq = start_seq
    seals = [c for c in checkpoints if c.kind == SEAL and c.last_seq > start_seq]
    # Checkpoints were read first: rows a sealer commits from now on lie beyond them and are left for next time.
    up_to = max((c.last_seq for c in seals), default=start_seq)
    check_chain(chain, sealed_rows(connection, table, start_seq, up_to), start_seq, start_hash, seals, trusted)
    if chain.problem is None:
        below = connection.scalar(select(func.min(table.c.seq)).where(table.c.seq <= start_seq))
        if below is not None:
            chain.problem = Problem(chained.name, "REORDERED", f"seq {below} is still in the database but was archived", below)
    chain.unsealed = connection.scalar(select(func.count()).select_from(table).where(table.c.seq.is_(None))) or 0
    return chain
