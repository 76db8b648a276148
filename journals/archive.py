"""Archiving sealed journal rows to signed files that verify offline (docs/tamper-evidence.md).

A file holds one journal's rows ``first_seq``..``last_seq`` as JSON lines: a header (with the hash the chain had
before its first row), the ARCHIVE checkpoint that attests that hash (unless the file starts at seq 1), the rows,
the SEAL checkpoints among them, and last an ARCHIVE checkpoint signed with the gateway's key over the SHA-256 of
everything before it. The file is written and fsynced before the rows leave the database, in the transaction that
deletes them and records the same ARCHIVE checkpoint as the database chain's new start.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select

from journals.models import JournalCheckpoint
from journals.seal import (
    ARCHIVE,
    CHAINED_TABLES,
    GENESIS,
    SEAL,
    ChainedTable,
    Checkpoint,
    CheckpointSigner,
    certificate_fingerprint,
    checkpoint_problem,
    lock_head,
    make_checkpoint,
    store_checkpoint,
)
from journals.verify import (
    ChainReport,
    ChainRow,
    CorruptCheckpoint,
    Problem,
    VerifyReport,
    check_chain,
    sealed_rows,
    stored_checkpoints,
)

FORMAT = "gateway-journal-archive/1"


class ArchiveRefused(RuntimeError):
    """The rows to archive do not match their chain: tampered rows are not laundered into a signed file."""


@dataclass(frozen=True)
class ArchiveResult:
    """One file written."""

    table: str
    path: Path
    first_seq: int
    last_seq: int


def archive(
    engine: Engine, signer: CheckpointSigner, before: datetime, directory: Path, max_rows_per_file: int = 100_000, max_files: int = 100
) -> list[ArchiveResult]:
    """Move each chained journal's sealed rows dated before ``before`` (the longest run from the chain's start:
    the chain stays contiguous) into signed files in ``directory``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    results: list[ArchiveResult] = []
    for chained in CHAINED_TABLES:
        for _ in range(max_files):
            result = _archive_once(engine, signer, chained, before, directory, max_rows_per_file)
            if result is None:
                break
            results.append(result)
    return results


def _archive_once(
    engine: Engine, signer: CheckpointSigner, chained: ChainedTable, before: datetime, directory: Path, max_rows: int
) -> ArchiveResult | None:
    table, checkpoints = chained.table, JournalCheckpoint.__table__
    with engine.begin() as connection:
        head_seq, _ = lock_head(connection, chained.name)  # no sealer extends the chain while rows leave it
        try:
            stored = stored_checkpoints(connection, chained.name)
        except CorruptCheckpoint as corrupt:
            raise ArchiveRefused(f"{chained.name}: {corrupt}; run 'gateway journals verify'") from corrupt
        bases = [c for c in stored if c.kind == ARCHIVE]
        base = max(bases, key=lambda c: c.last_seq) if bases else None
        start_seq, start_hash = (base.last_seq, base.last_hash) if base else (0, GENESIS)
        too_new = connection.scalar(
            select(func.min(table.c.seq)).where(table.c.seq > start_seq, or_(chained.time.is_(None), chained.time >= before))
        )
        last_seq = min(head_seq if too_new is None else too_new - 1, start_seq + max_rows)
        if last_seq <= start_seq:
            return None
        rows = list(sealed_rows(connection, table, start_seq, last_seq))  # an unreadable row fails the check below
        seals = [c for c in stored if c.kind == SEAL and start_seq < c.last_seq <= last_seq]
        check = ChainReport(chained.name)
        last_hash = check_chain(check, rows, start_seq, start_hash, seals, None)
        if check.problem is None and (not rows or rows[-1].seq != last_seq):
            check.problem = Problem(chained.name, "DELETED", f"rows up to seq {last_seq} are not all in the database")
        if check.problem is not None:
            raise ArchiveRefused(f"{chained.name}: {check.problem.message}; run 'gateway journals verify'")
        path = directory / f"{chained.name}-{start_seq + 1:012d}-{last_seq:012d}.jsonl"
        attestation = _write_file(path, signer, chained.name, start_seq, start_hash, base, rows, seals, last_hash)
        connection.execute(delete(table).where(table.c.seq <= last_seq))
        connection.execute(
            delete(checkpoints).where(
                checkpoints.c.table_name == chained.name,
                or_(checkpoints.c.kind == ARCHIVE, checkpoints.c.last_seq <= last_seq),
            )
        )
        store_checkpoint(connection, attestation)
    return ArchiveResult(chained.name, path, start_seq + 1, last_seq)


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _write_file(
    path: Path, signer: CheckpointSigner, table_name: str, start_seq: int, start_hash: str, base: Checkpoint | None,
    rows: Sequence[ChainRow], seals: Sequence[Checkpoint], last_hash: str,
) -> Checkpoint:
    """Write the file durably (temporary name, fsync, rename, fsync the folder) and return its ARCHIVE checkpoint."""
    last_seq = rows[-1].seq
    digest = hashlib.sha256()
    temporary = path.with_suffix(".partial")
    with temporary.open("wb") as out:
        def put(document: dict[str, Any]) -> None:
            data = _line(document)
            digest.update(data)
            out.write(data)

        put({"format": FORMAT, "table": table_name, "first_seq": start_seq + 1, "last_seq": last_seq, "previous_hash": start_hash})
        if base is not None:
            put({"base_checkpoint": base.as_dict()})
        for row in rows:
            put({"seq": row.seq, "id": row.row_id, "chain_hash": row.chain_hash, "row": row.content})
        for checkpoint in seals:
            put({"checkpoint": checkpoint.as_dict()})
        attestation = make_checkpoint(signer, table_name, ARCHIVE, start_seq + 1, last_seq, last_hash, path.name, digest.hexdigest())
        out.write(_line({"archive_checkpoint": attestation.as_dict()}))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return attestation


def verify_archive(path: Path, trusted_certificates: Sequence[bytes] = ()) -> VerifyReport:
    """Verify an archive file offline: its ARCHIVE checkpoint's signature over the file, the checkpoint attesting
    where it starts, the chain through every row and every SEAL checkpoint in it."""
    trusted = frozenset(certificate_fingerprint(pem) for pem in trusted_certificates) or None
    report = VerifyReport(signer_pinned=trusted is not None)
    lines = path.read_bytes().splitlines(keepends=True)
    try:
        header = json.loads(lines[0])
        if header.get("format") != FORMAT:
            raise ValueError("not a journal archive")
        final = Checkpoint.from_mapping(json.loads(lines[-1])["archive_checkpoint"])
    except (IndexError, KeyError, TypeError, ValueError) as error:
        chain = ChainReport(path.name, problem=Problem(path.name, "CHECKPOINT", f"unreadable archive file: {error}"))
        report.chains.append(chain)
        return report
    chain = ChainReport(str(header.get("table", path.name)))
    report.chains.append(chain)
    try:
        chain.problem = _file_problem(chain, header, final, lines, trusted)
    except (KeyError, TypeError, ValueError) as error:  # a file altered into something that is not an archive
        chain.problem = Problem(chain.table, "CHECKPOINT", f"unreadable archive file: {error}")
    return report


def _file_problem(chain: ChainReport, header: dict[str, Any], final: Checkpoint, lines: list[bytes], trusted: frozenset[str] | None) -> Problem | None:
    table = chain.table
    problem = checkpoint_problem(final, trusted)
    if problem is None and final.archive_sha256 != hashlib.sha256(b"".join(lines[:-1])).hexdigest():
        problem = "the file's contents differ from what was signed"
    if problem is None and (final.table_name, final.first_seq, final.last_seq) != (table, header["first_seq"], header["last_seq"]):
        problem = "does not describe this file"
    if problem is not None:
        return Problem(table, "CHECKPOINT", f"archive checkpoint: {problem}", final.last_seq)
    start_seq, start_hash = header["first_seq"] - 1, header["previous_hash"]
    documents = [json.loads(line) for line in lines[1:-1]]
    base = next((Checkpoint.from_mapping(d["base_checkpoint"]) for d in documents if "base_checkpoint" in d), None)
    if start_seq > 0:
        problem = "missing" if base is None else checkpoint_problem(base, trusted)
        if problem is None and base is not None and (base.last_seq, base.last_hash) != (start_seq, start_hash):
            problem = "does not match where the file starts"
        if problem is not None:
            return Problem(table, "CHECKPOINT", f"checkpoint of the previous archive: {problem}", start_seq)
    seals = [Checkpoint.from_mapping(d["checkpoint"]) for d in documents if "checkpoint" in d]
    last_hash = check_chain(chain, _file_rows(documents), start_seq, start_hash, seals, trusted)
    if chain.problem is None and (chain.rows != final.last_seq - start_seq or last_hash != final.last_hash):
        return Problem(table, "DELETED", f"the rows do not reach seq {final.last_seq} attested by the archive checkpoint", final.last_seq)
    chain.checkpoints += 1
    chain.last_seq = final.last_seq
    return chain.problem


def _file_rows(documents: list[dict[str, Any]]) -> Iterator[ChainRow]:
    for document in documents:
        if "seq" in document:
            yield ChainRow(document["seq"], document.get("id"), document.get("chain_hash"), document["row"])

