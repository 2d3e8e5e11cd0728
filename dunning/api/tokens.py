"""API tokens: random bearer tokens, stored only as their SHA-256 (`api_tokens`).

`dunning token create --role ROLE --name NAME` prints a token once; nothing can show
it again. A token has a role (what it may do) and a name (who acts: recorded as the
operator of every action taken with it); a collector's also a team (`--team`: whose
call tasks they work, schemas.call_tasks.DEFAULT_TEAM when none). Revoking keeps the
row for the record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.call_tasks import DEFAULT_TEAM, TEAM_PATTERN
from schemas.roles import Role

TOKEN_BYTES = 32
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TEAM = re.compile(TEAM_PATTERN)


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str
    team: str | None = None  # a collector's team (their token's)

    @property
    def queue(self) -> str:
        """The team whose call tasks this principal works."""
        return self.team or DEFAULT_TEAM

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
    team: str | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            "name: 1 to 64 letters, digits, and . _ @ - (it becomes the operator id "
            "recorded with every action)"
        )
    return name


def check_team(team: str) -> str:
    if not TEAM.fullmatch(team):
        raise ValueError(
            "team: 1 to 40 lower-case letters, digits, _ and -, a letter or digit first"
        )
    return team


async def create(
    conn: asyncpg.Connection | asyncpg.Pool, role: Role, name: str, team: str | None = None
) -> str:
    """A new token for `name` with `role` (and a collector's `team`); returns the token,
    which is not stored."""
    check_name(name)
    if team is not None:
        check_team(team)
        if role is not Role.collector:
            raise ValueError("team: only a collector's token names a team")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, role, name, team) VALUES ($1, $2, $3, $4)",
        token_hash(token),
        role.value,
        name,
        team,
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
        "SELECT role, name, team FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    return Principal(Role(row["role"]), row["name"], row["team"]) if row else None


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    """Revoke every live token of `name`; returns how many."""
    result: str = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name
    )
    return int(result.split()[-1])


async def listing(conn: asyncpg.Connection | asyncpg.Pool) -> list[TokenInfo]:
    rows = await conn.fetch(
        "SELECT id, role, name, created_at, revoked_at, team FROM api_tokens ORDER BY id"
    )
    return [TokenInfo(**dict(row)) for row in rows]
