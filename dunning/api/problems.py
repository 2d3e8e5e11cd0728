"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the API answers is a problem: `type`, `title`, `status`, `detail`, and
for invalid input (422) an `errors` list of `{field, problem}`. Input values are
never echoed, in a detail or anywhere else: they may be personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from dunning.problem_types import PROBLEM_JSON, document
from dunning.problem_types import title as problem_title

log = structlog.get_logger("dunning.api")


class FieldProblem(BaseModel):
    field: str
    problem: str


class ProblemDetails(BaseModel):
    """The shape of every error response (for the OpenAPI document)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    code: str | None = None


class Problem(Exception):
    """Raise from a route or dependency to answer with a problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or slug)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = [dict(e) for e in errors] if errors is not None else None
        self.headers = dict(headers or {})
        self.title = title or problem_title(slug)
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        body = document(self.status, self.slug, self.detail, self.errors, self.title)
        body.update(self.extra)  # extension members, e.g. a refusal's `code`
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def invalid(errors: list[dict[str, str]], detail: str | None = None) -> Problem:
    return Problem(
        422,
        "invalid-input",
        detail or "; ".join(f"{e['field']}: {e['problem']}" for e in errors),
        errors=errors,
    )


# A cross-field validator names its field at the start of its message ("phones[0]: ...").
_INNER_FIELD = re.compile(r"(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic / FastAPI errors as `{field, problem}`: the dotted path and the message,
    never the input (`input` and `ctx` are left out on purpose)."""
    result = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            where = loc.pop(0)
            if err.get("type") == "json_invalid":
                loc = []
            if not loc:
                loc = [where]
        field = ".".join(loc) or "(body)"
        kind = err.get("type")
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "json_invalid":
            message = "not valid JSON"
        inner = _INNER_FIELD.match(message)
        if inner:
            field = (
                f"{field}.{inner['field']}" if field not in ("(body)", "body") else inner["field"]
            )
            message = message[inner.end() :]
        result.append({"field": field, "problem": message})
    return result


def from_validation_error(exc: ValidationError, prefix: str = "") -> Problem:
    errors = field_problems(exc.errors(include_input=False, include_url=False))
    if prefix:
        errors = [{"field": f"{prefix}.{e['field']}", "problem": e["problem"]} for e in errors]
    return invalid(errors)


_HTTP_SLUGS = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    415: "unsupported-media-type",
}


def install(app: FastAPI) -> None:
    """Answer every error as a problem, FastAPI's validation errors included."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(field_problems(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8 JSON, ...)
            return invalid([{"field": "body", "problem": "not valid JSON"}]).response()
        slug = _HTTP_SLUGS.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return Problem(exc.status_code, slug, detail, headers=exc.headers).response()

    @app.exception_handler(RPCError)
    async def _temporal(_request: Request, exc: RPCError) -> JSONResponse:
        # A query the case's worker did not answer in time, Temporal unreachable, ...
        log.warning("Temporal call failed", status=exc.status.name)
        return Problem(
            503,
            "unavailable",
            f"Temporal did not answer ({exc.status.name.lower()}); retry shortly",
            headers={"Retry-After": "5"},
        ).response()

    @app.exception_handler(OSError)
    async def _unreachable(_request: Request, exc: OSError) -> JSONResponse:
        log.warning("a backing service is unreachable", error=type(exc).__name__)
        return Problem(
            503, "unavailable", "a backing service did not answer; retry shortly"
        ).response()

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        # Only the exception's type: its message may hold input values.
        log.error("unhandled error in the API", error=type(exc).__name__)
        return Problem(500, "internal", "the error was logged").response()
