"""How much a client may send: the body limits of the HTTP API and the codec server,
and how deeply JSON may nest.

A server that reads whatever it is sent can be made to hold any amount of memory (a
huge or endless chunked body) or to crash its parser (`json.loads` recurses per level
and raised RecursionError, a 500, on a body of 100,000 `[`). So both servers count a
body's bytes as they arrive and stop at their limit, whatever the Content-Length
says, and look at a body's nesting before any parser sees it.
"""

from __future__ import annotations

import re

MAX_API_BODY_BYTES = 2 * 1024 * 1024
"""The HTTP API: a batch of `POST /cases` (at most `routes_cases.MAX_BATCH` cases,
about 0.5 KiB each) fits several times over."""

MAX_CODEC_BODY_BYTES = 8 * 1024 * 1024
"""The codec server: the Temporal UI sends a page of a history's payloads at once."""

MAX_JSON_DEPTH = 32
"""Arrays and objects inside each other; a case is 4 deep, a codec request 3."""

READ_TIMEOUT_S = 30
"""The codec server gives up on a client that stops sending (a Content-Length that
promises more than comes)."""

TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


# A JSON string, or an unterminated one running to the end (so the scan stays linear).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit` anywhere in `body`.

    Strings are removed first (brackets in text are not nesting), then only brackets
    are looked at; malformed JSON is measured the same way (an unclosed `[[[[` is
    deep), and left for the parser to refuse."""
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
