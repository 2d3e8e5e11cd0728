"""The HTTP API's app factory: `create_app(settings)` for `dunning api`, the demo and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from pydantic.json_schema import models_json_schema
from temporalio.client import Client

from dunning.api import (
    problems,
    routes_actions,
    routes_audit,
    routes_cases,
    routes_health,
    routes_reports,
)
from dunning.api.idempotency import IdempotencyMiddleware
from dunning.api.limits import BodyLimitMiddleware
from dunning.api.problems import ProblemDetails
from dunning.api.services import Services
from dunning.console import routes as console
from dunning.problem_types import PROBLEM_JSON
from dunning.request_limits import MAX_API_BODY_BYTES, MAX_JSON_DEPTH
from dunning.settings import Settings
from dunning.temporal_client import connect
from schemas.case import CaseInput

DESCRIPTION = f"""\
Open cases, act on them and read them, for backend services and operators.

A request body is at most {MAX_API_BODY_BYTES} bytes (413 past it, whatever the
Content-Length says) and its JSON at most {MAX_JSON_DEPTH} levels deep (422);
`POST /cases` opens at most {routes_cases.MAX_BATCH} cases per batch (422 past it).

Authenticate with `Authorization: Bearer <token>` (tokens come from
`dunning token create --role ROLE --name NAME`); the token's role decides what it may
do and its name is recorded as who acted. Errors are RFC 9457 problem details
(`application/problem+json`); input values are never echoed. A POST with an
`Idempotency-Key` header is answered once: a retry gets the original response.
"""


def create_app(
    settings: Settings, *, client: Client | None = None, pool: asyncpg.Pool | None = None
) -> FastAPI:
    """The API. With `client` and `pool` it uses (and leaves open) those; otherwise it
    connects to Temporal and PostgreSQL at startup and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is not None and pool is not None:
            yield
            return
        own_pool = pool or await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
        try:
            app.state.services = Services(settings, client or await connect(settings), own_pool)
            yield
        finally:
            if pool is None:
                await own_pool.close()

    app = FastAPI(
        title="Dunning",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    if client is not None and pool is not None:
        app.state.services = Services(settings, client, pool)
    problems.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware)  # added last: the outermost, runs first
    app.include_router(routes_cases.router)
    app.include_router(routes_actions.router)
    app.include_router(routes_health.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_audit.router)
    console.install(app, settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the case schemas `POST /cases` reads by hand and every
    error response as a problem."""
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    _, extra = models_json_schema(
        [
            (CaseInput, "validation"),
            (routes_cases.CaseBatch, "validation"),
            (ProblemDetails, "validation"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in extra.get("$defs", {}).items():
        components.setdefault(name, schema)
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for path, operations in document.get("paths", {}).items():
        if path == "/healthz":
            continue  # its 503 is a health report, not a problem
        for method, operation in operations.items():
            if method in ("post", "put", "patch"):  # dunning.api.limits answers these
                operation.setdefault("responses", {}).setdefault(
                    "413", {"description": f"the body is over {MAX_API_BODY_BYTES} bytes"}
                )
            for code, response in operation.get("responses", {}).items():
                if code.isdigit() and int(code) >= 400:
                    response["content"] = problem
                    response.setdefault("description", "problem")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return document
