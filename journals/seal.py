"""Tamper evidence for the journals (issue 6, point 4; docs/tamper-evidence.md).

Rows are inserted exactly as before, with ``seq`` and ``chain_hash`` NULL. In the background, :func:`seal` takes
each chained journal's unsealed rows in id order, gives each the next sequence number and
``chain_hash = SHA-256(previous chain_hash || canonical bytes of the row with its seq)``, and writes a checkpoint
signed with the gateway's key, all in one transaction per batch. :mod:`journals.verify` recomputes every chain
from the rows and names the first row that was edited, deleted or reordered; :mod:`journals.archive` moves old
sealed rows to signed files that verify offline.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import Connection, ColumnElement, Engine, Table, bindparam, func, insert, select, update

from journals.audit import AuditLogEntry, RegistrationJournalEntry
from journals.models import IncidentJournalEntry, JournalChainHead, JournalCheckpoint, LoggingJournalEntry
from journals.stored import read_rows
from journals.times import as_utc

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the "previous hash" of a chain's first row
SEAL = "SEAL"
ARCHIVE = "ARCHIVE"
CHAIN_COLUMNS = frozenset({"seq", "chain_hash"})


@dataclass(frozen=True)
class ChainedTable:
    """A journal table under the chain: ``time`` dates a row for archiving; only rows matching ``sealable`` are
    sealed (an incident is sealed once closed, since administrators fill in an open one)."""

    table: Table
    time: ColumnElement[Any]
    sealable: ColumnElement[bool] | None = None

    @property
    def name(self) -> str:
        """The table's name, which is also the chain's name."""
        return self.table.name


_LOGGING = LoggingJournalEntry.__table__
_INCIDENT = IncidentJournalEntry.__table__
_AUDIT = AuditLogEntry.__table__
_REGISTRATION = RegistrationJournalEntry.__table__
# The one list of chained journals. A journal joins by carrying journals.models.ChainedRow (and its migration).
CHAINED_TABLES: tuple[ChainedTable, ...] = (
    ChainedTable(_LOGGING, func.coalesce(_LOGGING.c.received_at, _LOGGING.c.sent_at)),
    ChainedTable(_INCIDENT, _INCIDENT.c.opened_at, _INCIDENT.c.closed_at.is_not(None)),
    ChainedTable(_AUDIT, _AUDIT.c.at),
    ChainedTable(_REGISTRATION, _REGISTRATION.c.recorded_at),
)


class CheckpointSigner(Protocol):
    """What sealing needs of the gateway's key: gateway.security.wssec.EnvelopeSigner has both."""

    private_key: Any
    cert_pem: bytes


# ---------------------------------------------------------------------------------------------- canonical forms


def _plain(value: Any) -> Any:
    """A column value as JSON the same on every database: datetimes in UTC to the microsecond (SQLite returns
    them naive, holding UTC), decimals and bytes as text."""
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def row_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the chain covers of a row: every non-NULL column but the chain's own (so a column added later, NULL
    in old rows, leaves their hashes unchanged), ``id`` included."""
    return {name: _plain(value) for name, value in row.items() if name not in CHAIN_COLUMNS and value is not None}


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(previous_hash: str, table_name: str, seq: int, content: Mapping[str, Any]) -> str:
    """The chain hash of the row at ``seq`` with ``content`` after a row whose chain hash is ``previous_hash``."""
    data = previous_hash.encode("ascii") + _canonical({"table": table_name, "seq": seq, "row": content})
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- checkpoints

SIGNED_FIELDS = ("table_name", "kind", "first_seq", "last_seq", "last_hash", "created_at", "archive_name", "archive_sha256")


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint as stored in the database and in archive files."""

    table_name: str
    kind: str
    first_seq: int
    last_seq: int
    last_hash: str
    created_at: str
    signature: str
    certificate: str
    archive_name: str | None = None
    archive_sha256: str | None = None
    id: int | None = None

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return _canonical({name: getattr(self, name) for name in SIGNED_FIELDS})

    def as_dict(self) -> dict[str, Any]:
        """The checkpoint as archive files carry it."""
        return {name: getattr(self, name) for name in (*SIGNED_FIELDS, "signature", "certificate")}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Checkpoint:
        """From a database row or an archive file's object."""
        return cls(**{name: values.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


def make_checkpoint(signer: CheckpointSigner, table_name: str, kind: str, first_seq: int, last_seq: int, last_hash: str,
                    archive_name: str | None = None, archive_sha256: str | None = None) -> Checkpoint:
    """A checkpoint signed with ``signer``'s key (RSA PKCS#1 v1.5 or ECDSA, SHA-256)."""
    unsigned = Checkpoint(
        table_name=table_name, kind=kind, first_seq=first_seq, last_seq=last_seq, last_hash=last_hash,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), signature="", certificate=signer.cert_pem.decode(),
        archive_name=archive_name, archive_sha256=archive_sha256,
    )
    key = signer.private_key
    data = unsigned.signed_bytes()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        raise TypeError(f"cannot sign checkpoints with a {type(key).__name__}")
    return Checkpoint(**{**unsigned.__dict__, "signature": base64.b64encode(signature).decode()})


def certificate_fingerprint(pem: bytes | str) -> str:
    """SHA-256 fingerprint of a PEM certificate, for pinning the signer."""
    certificate = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


def checkpoint_problem(checkpoint: Checkpoint, trusted: frozenset[str] | None) -> str | None:
    """Why ``checkpoint`` cannot be trusted, or None: a signature that does not verify with its certificate, or
    (when ``trusted`` fingerprints are given) a certificate that is not one of them."""
    try:
        certificate = x509.load_pem_x509_certificate(checkpoint.certificate.encode())
        public_key = certificate.public_key()
        signature = base64.b64decode(checkpoint.signature, validate=True)
        data = checkpoint.signed_bytes()
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return "signed with an unsupported key type"
    except (InvalidSignature, ValueError, TypeError):
        return "signature invalid"
    if trusted is not None and certificate.fingerprint(hashes.SHA256()).hex() not in trusted:
        subject = certificate.subject.rfc4514_string()
        return f"signed by an untrusted certificate ({subject})"
    return None


# ---------------------------------------------------------------------------------------------- sealing


def lock_head(connection: Connection, table_name: str) -> tuple[int, str]:
    """Lock ``table_name``'s chain head for this transaction and return (last seq, last hash). The first statement
    is a write, so on SQLite it waits for the database write lock before reading anything; on PostgreSQL it holds
    the head row's lock until commit. Either way a second sealer or archiver waits here."""
    head = JournalChainHead.__table__
    locked = connection.execute(
        update(head).where(head.c.table_name == table_name).values(locked_at=datetime.now(UTC))
    ).rowcount
    if not locked:
        # The first seal of a journal: two sealers may both get here; the second one's insert fails and that
        # run is retried at the next interval (no row is sealed twice: the whole batch rolls back).
        connection.execute(insert(head).values(table_name=table_name, last_seq=0, last_hash=GENESIS, locked_at=datetime.now(UTC)))
    last_seq, last_hash = connection.execute(
        select(head.c.last_seq, head.c.last_hash).where(head.c.table_name == table_name)
    ).one()
    return last_seq, last_hash


def store_checkpoint(connection: Connection, checkpoint: Checkpoint) -> None:
    """Insert ``checkpoint`` (its ``id`` is the database's)."""
    values = checkpoint.as_dict()
    connection.execute(insert(JournalCheckpoint.__table__).values(**values))


def set_head(connection: Connection, table_name: str, last_seq: int, last_hash: str) -> None:
    """Move ``table_name``'s chain head (within the caller's transaction, which holds its lock)."""
    head = JournalChainHead.__table__
    connection.execute(update(head).where(head.c.table_name == table_name).values(last_seq=last_seq, last_hash=last_hash))


def _seal_batch(engine: Engine, signer: CheckpointSigner, chained: ChainedTable, batch_size: int) -> int:
    """Seal up to ``batch_size`` rows of one journal in one transaction; return how many."""
    table = chained.table
    with engine.begin() as connection:
        last_seq, last_hash = lock_head(connection, chained.name)
        query = select(table).where(table.c.seq.is_(None)).with_for_update()
        if chained.sealable is not None:
            query = query.where(chained.sealable)
        first_seq, updates = last_seq + 1, []
        for stored in read_rows(connection, query, [table.c.id], batch_size):
            problem = stored.problem
            if stored.values is not None:
                try:
                    next_hash = link(last_hash, chained.name, last_seq + 1, row_content(stored.values))
                except ValueError as error:  # a value read back that no text encoding holds
                    problem = f"cannot hash a stored value ({error})"
            if problem is not None:
                # The chain may neither skip a row nor hash one it cannot read: it waits here until it is repaired.
                log.error("%s row id %s cannot be sealed: %s; sealing this journal waits until it is repaired",
                          chained.name, stored.key[0], problem)
                break
            last_seq, last_hash = last_seq + 1, next_hash
            updates.append({"row_id": stored.key[0], "new_seq": last_seq, "new_hash": last_hash})
        if not updates:
            return 0
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"), table.c.seq.is_(None))
            .values(seq=bindparam("new_seq"), chain_hash=bindparam("new_hash")),
            updates,
        )
        store_checkpoint(connection, make_checkpoint(signer, chained.name, SEAL, first_seq, last_seq, last_hash))
        set_head(connection, chained.name, last_seq, last_hash)
        return len(updates)


def seal(engine: Engine, signer: CheckpointSigner, batch_size: int = 500, max_batches: int = 200) -> dict[str, int]:
    """Seal every chained journal's unsealed rows (up to ``max_batches`` batches each, the rest next time) and
    return how many rows were sealed per table. Traffic is not held up: rows are inserted as before, and each
    batch is a short transaction of its own, so a crash leaves whole batches sealed or not at all."""
    return {
        chained.name: _seal_table(engine, signer, chained, batch_size, max_batches) for chained in CHAINED_TABLES
    }


def _seal_table(engine: Engine, signer: CheckpointSigner, chained: ChainedTable, batch_size: int, max_batches: int) -> int:
    total = 0
    for _ in range(max_batches):
        sealed = _seal_batch(engine, signer, chained, batch_size)
        total += sealed
        if sealed < batch_size:
            break
    return total


# ---------------------------------------------------------------------------------------------- scheduling


def schedule_sealing(
    scheduler: Any, engine: Engine, signer: CheckpointSigner | None, interval_seconds: float,
    guard: Callable[[Callable[..., Any], str], Callable[..., Any]] = lambda job, _name: job,
) -> bool:
    """Add the sealing job to an APScheduler ``scheduler`` (one run at a time; a late run is coalesced), wrapped
    by ``guard`` (how the caller logs a failed run). Without a signing key nothing is sealed: say so and return
    False."""
    if signer is None:
        log.warning("GATEWAY_SIGNING_KEY is not set: journal rows are not sealed (no tamper evidence)")
        return False
    scheduler.add_job(guard(seal, "sealing the journals"), "interval", seconds=interval_seconds, args=(engine, signer),
                      max_instances=1, coalesce=True)
    return True

