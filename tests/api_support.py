"""Helpers for the HTTP API's tests: a real uvicorn server on a free loopback port,
served by a task of the test's event loop (so the worker on the same loop keeps
going), and one token per role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from temporalio.client import Client

from dunning.api import tokens
from dunning.api.app import create_app
from dunning.api.server import running_api
from dunning.settings import Settings
from schemas.roles import Role


@dataclass(frozen=True)
class Caller:
    role: Role
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def serving(settings: Settings, client: Client, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The API's base URL while the block runs; the server is stopped after it."""
    async with running_api(create_app(settings, client=client, pool=pool)) as running:
        yield running.url


async def callers(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    """A fresh token for each role, named `<role>-<random>`, made as `dunning token
    create` makes them: as the schema's owner (the API may only read tokens)."""
    found = {}
    for role in Role:
        name = f"{role.value}-{uuid.uuid4().hex[:6]}"
        found[role] = Caller(role, name, await tokens.create(owner_pool, role, name))
    return found
