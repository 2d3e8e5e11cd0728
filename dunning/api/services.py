"""What every request uses: settings, the Temporal client, the PostgreSQL pool."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from fastapi import Request
from temporalio.client import Client

from dunning.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    client: Client
    pool: asyncpg.Pool


def services(request: Request) -> Services:
    found = getattr(request.app.state, "services", None)
    if not isinstance(found, Services):
        raise RuntimeError("the API's services are not set up (lifespan not run?)")
    return found
