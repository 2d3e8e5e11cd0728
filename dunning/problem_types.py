"""The kinds of problem the engine's HTTP servers answer (RFC 9457), without a framework.

One table of `type` slugs and titles, and the document's shape, shared by the HTTP
API (`dunning.api.problems`, which adds FastAPI's handlers) and the codec server (the
standard library's HTTP server), so a client branches on the same `type` URNs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:dunning:problem:"

# Titles by slug: one per kind of problem, so clients can branch on `type`.
TITLES = {
    "unauthenticated": "Missing or invalid bearer token",
    "forbidden": "Not allowed for this role",
    "case-not-found": "No such case",
    "already-open": "A case for this loan is already open",
    "already-closed": "A case for this loan exists and is closed",
    "case-closed": "The case is closed",
    "rejected": "The case refused the action",
    "invalid-input": "Invalid input",
    "idempotency-key-reused": "Idempotency-Key reused with a different request",
    "idempotency-in-progress": "A request with this Idempotency-Key is still running",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "unsupported-media-type": "Unsupported media type",
    "body-too-large": "Request body too large",
    "bad-request": "Malformed request",
    "internal": "Internal error",
    "unavailable": "A backing service is unavailable",
}


def title(slug: str) -> str:
    return TITLES.get(slug, slug.replace("-", " ").capitalize())


def document(
    status: int,
    slug: str,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    title_text: str | None = None,
) -> dict[str, Any]:
    """The problem document: `type`, `title`, `status`, and `detail` / `errors` if any."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title_text or title(slug),
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    return body
