"""API tokens: random bearer tokens, stored only as their SHA-256 (`api_tokens`).

`dunning token create --role ROLE --name NAME` prints a token once; nothing can show
it again. A token has a role (what it may do) and a name (who acts: recorded as the
operator of every action taken with it). Revoking keeps the row for the record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.roles import Role

TOKEN_BYTES = 32
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str

    @property
    def id(self) -> str:
        """`<role>:<name>`, the actor in logs and the owner of idempotency keys."""
        return f"{self.role.value}:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            "name: 1 to 64 letters, digits, and . _ @ - (it becomes the operator id "
            "recorded with every action)"
        )
    return name


async def create(conn: asyncpg.Connection | asyncpg.Pool, role: Role, name: str) -> str:
    """A new token for `name` with `role`; returns the token, which is not stored."""
    check_name(name)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, role, name) VALUES ($1, $2, $3)",
        token_hash(token),
        role.value,
        name,
    )
    return token


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> Principal | None:
    """The principal of a live (not revoked) token, or None."""
    if not token or len(token) > 200:
        return None
    return await lookup_hash(conn, token_hash(token))


async def lookup_hash(conn: asyncpg.Connection | asyncpg.Pool, digest: str) -> Principal | None:
    """The principal of the live token whose SHA-256 is `digest` (a console session
    keeps only the hash, so revoking the token ends the session), or None."""
    row = await conn.fetchrow(
        "SELECT role, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    return Principal(Role(row["role"]), row["name"]) if row else None


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    """Revoke every live token of `name`; returns how many."""
    result: str = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name
    )
    return int(result.split()[-1])


async def listing(conn: asyncpg.Connection | asyncpg.Pool) -> list[TokenInfo]:
    rows = await conn.fetch(
        "SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY id"
    )
    return [TokenInfo(**dict(row)) for row in rows]
