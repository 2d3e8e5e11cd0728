"""Serving the API with uvicorn inside a running asyncio loop (the CLI, the demo, tests).

The socket is bound here, before uvicorn starts, so a port in use is an OSError the
caller can report (uvicorn itself would `sys.exit`), and port 0 picks a free port.
Logging stays as `dunning.logging_setup` configured it (uvicorn's own config is off).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from dunning.settings import Settings


@dataclass(frozen=True)
class Running:
    host: str
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def server_for(app: FastAPI, *, access_log: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(app, log_config=None, access_log=access_log, lifespan="on")
    return uvicorn.Server(config)


async def serve(app: FastAPI, host: str, port: int, *, access_log: bool = True) -> None:
    """Serve until the server is told to stop (Ctrl-C / SIGTERM)."""
    sock = bind(host, port)
    await server_for(app, access_log=access_log).serve(sockets=[sock])


@asynccontextmanager
async def running_api(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Running]:
    """The API served by a task of this loop while the block runs; port 0 picks one.

    Raises OSError at once when the port cannot be bound.
    """
    sock = bind(host, port)
    server = server_for(app)
    # Signals stay with the caller (the demo's Ctrl-C, pytest's): the block's exit stops us.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def serving() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn's answer to a failed startup
            raise RuntimeError(f"the API server could not start (exit {exc.code})") from None

    task = asyncio.create_task(serving())
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise why
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.02)
        yield Running(host, sock.getsockname()[1], server)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        sock.close()


@asynccontextmanager
async def optional_api(
    settings: Settings, client: Client, port: int | None, say: Callable[[str], None]
) -> AsyncIterator[str | None]:
    """The demo's API on 127.0.0.1:`port` (None: no API); a port in use is reported
    with `say` and the demo goes on without it."""
    if port is None:
        yield None
        return
    from dunning.api.app import create_app

    async with contextlib.AsyncExitStack() as stack:
        try:
            running = await stack.enter_async_context(
                running_api(create_app(settings, client=client), "127.0.0.1", port)
            )
        except (OSError, RuntimeError) as exc:
            say(f"HTTP API not started on port {port}: {getattr(exc, 'strerror', None) or exc}")
            yield None
            return
        say(
            f"HTTP API: {running.url}  (OpenAPI: {running.url}/docs; console: "
            f"{running.url}/ui; a token: dunning token create --role operator --name op-1)"
        )
        yield running.url
