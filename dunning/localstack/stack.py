"""`dunning dev up | down | status`: both servers together, idempotent, data kept.

Ports come from the settings (the port of `temporal_address`, the port and database
of `database_url`, `temporal_ui_port`), so tests run a private stack on free ports in
a temporary state folder with `private_settings`.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dunning.codec import ensure_key_file
from dunning.db import checkpoints
from dunning.db.migrate import prepare
from dunning.localstack import postgres, temporal
from dunning.localstack.net import free_port, split_address
from dunning.settings import APP_ROLE, EMBEDDED_SUPERUSER, Settings

__all__ = ["StackInfo", "down", "free_port", "private_settings", "status", "up", "up_async"]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class StackError(RuntimeError):
    """The settings do not describe an embedded stack this machine can run."""


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack answers."""

    temporal_address: str
    temporal_ui: str
    database_url: str
    state_dir: Path
    warning: str | None = None


def private_settings(state_dir: Path) -> Settings:
    """Settings for a stack of its own: free ports, database `dunning` (the application
    connects as the application role, migrations as the superuser), this state folder."""
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    temporal_port, ui_port, pg_port = sorted(ports)
    return Settings(
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_ui_port=ui_port,
        database_url=f"postgresql://{APP_ROLE}@127.0.0.1:{pg_port}/dunning",
        database_owner_url=f"postgresql://{EMBEDDED_SUPERUSER}@127.0.0.1:{pg_port}/dunning",
        state_dir=state_dir,
    )


def _state_dir(settings: Settings) -> Path:
    return settings.state_dir.expanduser().resolve()


def _postgres_port(settings: Settings) -> int:
    url = urlsplit(settings.database_url)
    if url.hostname not in LOCAL_HOSTS or url.port is None:
        raise StackError(
            f"database_url must point at 127.0.0.1:<port> for the embedded stack, "
            f"not {url.hostname}:{url.port}"
        )
    owner = urlsplit(settings.owner_database_url)
    if (owner.hostname, owner.port, owner.path) != (url.hostname, url.port, url.path):
        raise StackError(
            "database_owner_url must name the same server and database as database_url "
            "for the embedded stack"
        )
    return url.port


def _check_temporal_host(settings: Settings) -> None:
    host, _ = split_address(settings.temporal_address)
    if host not in LOCAL_HOSTS:
        raise StackError(f"temporal_address must be local for the embedded stack, not {host}")


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One `up` or `down` at a time per state folder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "stack.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ui_url(settings: Settings) -> str:
    host, _ = split_address(settings.temporal_address)
    return f"http://{host}:{settings.temporal_ui_port}"


async def up_async(settings: Settings) -> StackInfo:
    """Make the payload key if there is none, start what is not running, create the
    database, migrate, register search attributes."""
    state_dir = _state_dir(settings)
    pg_port = _postgres_port(settings)
    _check_temporal_host(settings)
    with _locked(state_dir):
        # The payload key (dunning.codec), made once and kept: data written with it stays
        # readable. Settings with keys of their own do not use it.
        ensure_key_file(state_dir)
        # The workers' key for signing audit checkpoints (dunning.db.checkpoints), likewise.
        checkpoints.ensure_key_file(state_dir)
        started_temporal = temporal.running_pid(state_dir) is None
        started_postgres = postgres.running_pid(state_dir) is None
        try:
            # Temporal boots in its own process while PostgreSQL starts and migrates.
            temporal_pid = temporal.launch(settings, state_dir)
            await asyncio.to_thread(postgres.start, state_dir, pg_port)
            _, warning = await prepare(settings.owner_database_url, settings.database_url)
            client = await temporal.wait_ready(settings, state_dir, temporal_pid)
            await temporal.ensure_search_attributes(client, settings.temporal_namespace)
        except BaseException:
            # Leave nothing half up: stop what this call started, keep what already ran.
            if started_temporal:
                temporal.stop(state_dir)
            if started_postgres:
                postgres.stop(state_dir)
            raise
    return StackInfo(
        temporal_address=settings.temporal_address,
        temporal_ui=_ui_url(settings),
        database_url=settings.database_url,
        state_dir=state_dir,
        warning=warning,
    )


def up(settings: Settings) -> StackInfo:
    """Bring the stack up (see `up_async`); safe to call when it already runs."""
    return asyncio.run(up_async(settings))


def down(settings: Settings) -> None:
    """Stop both servers if they run; their data stays for the next `up`."""
    state_dir = _state_dir(settings)
    if not state_dir.exists():
        return
    with _locked(state_dir):
        temporal.stop(state_dir)
        postgres.stop(state_dir)


def status(settings: Settings) -> dict[str, Any]:
    """Whether each server runs, its pid, address and log, and the state folder."""
    state_dir = _state_dir(settings)
    temporal_pid = temporal.running_pid(state_dir)
    postgres_pid = postgres.running_pid(state_dir)
    url = urlsplit(settings.database_url)
    return {
        "temporal": {
            "running": temporal_pid is not None,
            "pid": temporal_pid,
            "address": settings.temporal_address,
            "ui": _ui_url(settings),
            "log": str(temporal.log_file(state_dir)),
        },
        "postgres": {
            "running": postgres_pid is not None,
            "pid": postgres_pid,
            "address": f"{url.hostname}:{url.port}",
            "database_url": settings.database_url,
            "owner_url": settings.owner_database_url,
            "log": str(postgres.Paths.under(state_dir).log),
        },
        "state_dir": str(state_dir),
    }
