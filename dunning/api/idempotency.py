"""`Idempotency-Key` on POST: a retried request gets the original response.

The first request with a key (per principal) is recorded with a fingerprint of its
method, path and body before it runs, and its response (status and body) after. A
retry with the same key and the same request gets that response again, without
running anything; the same key on a different request is a 422 problem; a retry
while the first is still running is a 409 problem (retry later). A 5xx answer is
not kept, so the retry runs for real. A request left unfinished by a crash is taken
over by the next retry after `STALE_AFTER`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dunning.api.auth import principal_for
from dunning.api.limits import replay_body
from dunning.api.problems import Problem, invalid
from dunning.api.services import services

HEADER = "Idempotency-Key"
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
STALE_AFTER = "5 minutes"


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status_code: int | None
    content_type: str | None
    body: bytes | None


BEGIN = f"""
INSERT INTO api_idempotency (principal, key, method, path, request_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (principal, key) DO UPDATE
    SET method = EXCLUDED.method, path = EXCLUDED.path,
        request_hash = EXCLUDED.request_hash, created_at = now()
    WHERE api_idempotency.status_code IS NULL
      AND api_idempotency.created_at < now() - interval '{STALE_AFTER}'
RETURNING true
"""


async def begin(
    pool: Any, principal: str, key: str, method: str, path: str, request_hash: str
) -> Stored | None:
    """Claim the key (None: run the request) or return what is stored under it."""
    async with pool.acquire() as conn:
        claimed = await conn.fetchval(BEGIN, principal, key, method, path, request_hash)
        if claimed:
            return None
        row = await conn.fetchrow(
            "SELECT request_hash, status_code, content_type, response_body "
            "FROM api_idempotency WHERE principal = $1 AND key = $2",
            principal,
            key,
        )
    if row is None:  # removed meanwhile (the first request failed): try once more
        return await begin(pool, principal, key, method, path, request_hash)
    return Stored(
        row["request_hash"], row["status_code"], row["content_type"], row["response_body"]
    )


async def finish(
    pool: Any, principal: str, key: str, status: int, content_type: str | None, body: bytes
) -> None:
    await pool.execute(
        "UPDATE api_idempotency SET status_code = $3, content_type = $4, response_body = $5 "
        "WHERE principal = $1 AND key = $2",
        principal,
        key,
        status,
        content_type,
        body,
    )


async def forget(pool: Any, principal: str, key: str) -> None:
    await pool.execute(
        "DELETE FROM api_idempotency WHERE principal = $1 AND key = $2 AND status_code IS NULL",
        principal,
        key,
    )


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyMiddleware:
    """Pure ASGI middleware (the body is read once and handed on unchanged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key = request.headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not KEY.fullmatch(key):
            problem = invalid(
                [{"field": HEADER, "problem": "1 to 255 printable ASCII characters, no spaces"}]
            )
            await problem.response()(scope, receive, send)
            return
        principal = await principal_for(request, request.headers.get("authorization"))
        if principal is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        request.state.principal = principal
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        request_hash = fingerprint(method, path, scope.get("query_string", b""), body)
        pool = services(request).pool
        stored = await begin(pool, principal.id, key, method, path, request_hash)
        if stored is not None:
            await _answer_from(stored, request_hash)(scope, receive, send)
            return

        captured: dict[str, Any] = {"status": 500, "content_type": None, "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body(body, receive), capture)
        except BaseException:
            await forget(pool, principal.id, key)
            raise
        if captured["status"] >= 500:
            await forget(pool, principal.id, key)
        else:
            await finish(
                pool,
                principal.id,
                key,
                captured["status"],
                captured["content_type"],
                bytes(captured["body"]),
            )


def _answer_from(stored: Stored, request_hash: str) -> ASGIApp:
    from starlette.responses import Response

    if stored.request_hash != request_hash:
        return invalid(
            [{"field": HEADER, "problem": "already used for a different request"}],
            detail="this Idempotency-Key was used with a different method, path or body; "
            "use a new key for a new request",
        ).response()
    if stored.status_code is None:
        return Problem(
            409,
            "idempotency-in-progress",
            "the first request with this key has not finished; retry shortly",
            headers={"Retry-After": "1"},
        ).response()
    return Response(
        content=stored.body or b"",
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
