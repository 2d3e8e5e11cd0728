"""`GET /healthz`: Temporal and PostgreSQL both answer (200), or not (503). No token."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dunning.api.services import Services, services

TIMEOUT = 2.0

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: str
    postgresql: str


async def _temporal(current: Services) -> str:
    try:
        ok = await current.client.service_client.check_health(timeout=timedelta(seconds=TIMEOUT))
    except Exception as exc:
        return f"down ({type(exc).__name__})"
    return "ok" if ok else "down (not serving)"


async def _postgresql(current: Services) -> str:
    try:
        async with asyncio.timeout(TIMEOUT):
            await current.pool.fetchval("SELECT 1")
    except Exception as exc:
        return f"down ({type(exc).__name__})"
    return "ok"


@router.get(
    "/healthz",
    summary="Whether Temporal and PostgreSQL answer",
    response_model=Health,
    responses={503: {"model": Health, "description": "one of them does not answer"}},
)
async def healthz(request: Request) -> JSONResponse:
    current = services(request)
    temporal, postgresql = await asyncio.gather(_temporal(current), _postgresql(current))
    ok = temporal == "ok" and postgresql == "ok"
    body = Health(status="ok" if ok else "unavailable", temporal=temporal, postgresql=postgresql)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
