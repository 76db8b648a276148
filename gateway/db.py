"""The database engine and migrations; the gateway composes both rooms' tables into one database."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event

from gateway.store.models import GatewayBase
from gateway.wal_checkpoints import checkpoint_in_background
import journals.audit  # noqa: F401  (the audit log and registration journal join JournalBase.metadata)
from journals.models import JournalBase
from registry.models import RegistryBase

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ALL_METADATA: list[MetaData] = [RegistryBase.metadata, JournalBase.metadata, GatewayBase.metadata]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes concurrent writers wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Checkpoints run on a thread of their own (gateway/wal_checkpoints.py), never inside a writer's commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def make_engine(url: str, pool_size: int = 20) -> Engine:
    """Create the engine for ``url``; a SQLite file gets WAL mode and its folder is created. Statement parameters
    (message data, credentials' hashes) never appear in errors or logs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=pool_size, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            checkpoint_in_background(Path(path))
        return engine
    # No pre-ping: it costs a round trip per checkout; a dropped connection invalidates the pool on first use.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, hide_parameters=True)


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the newest migration."""
    command.upgrade(alembic_config(engine), "head")
