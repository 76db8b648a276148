"""Admin API tokens: random, shown once, stored as SHA-256, each with a role.

A token is 32 random bytes (``secrets.token_urlsafe``), so it cannot be guessed or brute-forced from its hash
whatever the hash's speed; a slow password KDF (Argon2) would only add its cost to every API request. SHA-256
also lets a presented token be found by an indexed equality lookup on its hash, so no comparison ever touches
the secret itself.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.store.models import AdminToken
from journals.audit import record_change

ADMINISTRATOR = "administrator"
AUDITOR = "auditor"
ROLES = (ADMINISTRATOR, AUDITOR)
TOKEN_PREFIX = "gwa_"  # recognisable in a leaked-secret scan


class TokenError(Exception):
    """A token operation that cannot be done."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (the audit log's "who") and its role."""

    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return self.role == ADMINISTRATOR


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret, nor its hash."""

    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, name: str, role: str, actor: str) -> str:
    """Create a token called ``name`` with ``role`` and return its secret: the only time it exists in clear."""
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise TokenError("a token name is 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        if session.scalar(select(AdminToken.id).where(AdminToken.name == name)) is not None:
            raise TokenError(f"a token called {name!r} exists already (names are never reused)")
        session.add(AdminToken(name=name, role=role, token_hash=hash_token(token), created_at=datetime.now(UTC)))
        record_change(session, actor, "CREATE", "tokens", name, None, {"name": name, "role": role})
    return token


def revoke_token(engine: Engine, name: str, actor: str) -> None:
    """Revoke the token called ``name``; it is refused from the next request on."""
    with Session(engine) as session, session.begin():
        row = session.scalar(select(AdminToken).where(AdminToken.name == name))
        if row is None or row.revoked_at is not None:
            raise TokenError(f"no active token called {name!r}")
        row.revoked_at = datetime.now(UTC)
        record_change(session, actor, "REVOKE", "tokens", name, {"name": name, "role": row.role}, None)


def list_tokens(engine: Engine) -> list[TokenInfo]:
    """Every token, revoked ones included, by name."""
    with Session(engine) as session:
        rows = session.scalars(select(AdminToken).order_by(AdminToken.name))
        return [TokenInfo(r.name, r.role, r.created_at, r.revoked_at) for r in rows]


def authenticate(engine: Engine, presented: str) -> Principal | None:
    """The principal of an active token, or None."""
    if not presented.startswith(TOKEN_PREFIX):
        return None
    with Session(engine) as session:
        row = session.execute(
            select(AdminToken.name, AdminToken.role).where(
                AdminToken.token_hash == hash_token(presented), AdminToken.revoked_at.is_(None)
            )
        ).first()
    return Principal(row.name, row.role) if row else None
