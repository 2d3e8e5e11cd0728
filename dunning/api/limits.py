"""Bounded requests: the API's outermost middleware.

Before any route, token check or idempotency lookup runs, the request body is read
here, counting bytes as they arrive: a Content-Length over `MAX_API_BODY_BYTES` is
answered 413 without reading anything, and a body that turns out longer (chunked, no
Content-Length) is answered 413 as soon as it passes the limit, the rest unread and
the connection closed. A body nested deeper than `MAX_JSON_DEPTH` is a 422 naming
`body`. What passes is handed on unchanged. (A negative or malformed Content-Length
never gets here: uvicorn's HTTP parser answers it with 400 and closes; one smaller
than the body sent makes the server read only that many bytes.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dunning.api.problems import Problem, invalid
from dunning.request_limits import (
    MAX_API_BODY_BYTES,
    MAX_JSON_DEPTH,
    TOO_DEEP,
    json_too_deep,
    too_large,
)


def _too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", too_large(limit), headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Pure ASGI: reads the body once, bounded, and replays it to the app."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_API_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes).response()(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _too_large(self.max_bytes).response()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if body and json_too_deep(bytes(body), self.max_depth):
            await invalid([{"field": "body", "problem": TOO_DEEP}]).response()(scope, receive, send)
            return
        await self.app(scope, replay_body(bytes(body), receive), send)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """An ASGI `receive` that hands the app the body already read, then the rest."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
