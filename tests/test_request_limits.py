"""Bounded requests (issue 12, item 10): the HTTP API and the codec server refuse a
body over their documented limit with 413 before reading it, whatever the
Content-Length says (too big, negative, absent with a chunked body, or lying), refuse
JSON nested deeper than the documented depth with 422 (it used to be a 500 from a
RecursionError), and `POST /cases` refuses a batch over its documented size.

Requests are written by hand on raw sockets or streamed by httpx, so the server sees
exactly the framing a hostile client would send.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from dunning.api.routes_cases import MAX_BATCH
from dunning.api.tokens import Role
from dunning.codec_server import CodecServer
from dunning.localstack.net import free_port
from dunning.request_limits import MAX_API_BODY_BYTES, MAX_CODEC_BODY_BYTES, MAX_JSON_DEPTH
from dunning.settings import Settings
from tests.api_support import Caller, callers, serving
from tests.factories import case_payload
from tests.test_encryption import K1, TOKEN, _codec

PROBLEM = "application/problem+json"
CHUNK = 64 * 1024


@pytest.fixture
async def api_url(
    dev_client: Client, pool: asyncpg.Pool, stack_settings: Settings
) -> AsyncIterator[str]:
    async with serving(stack_settings, dev_client, pool) as url:
        yield url


@pytest.fixture(scope="module")
async def who(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    return await callers(owner_pool)


@pytest.fixture
def codec_url() -> Iterator[str]:
    server = CodecServer(("127.0.0.1", free_port()), _codec({"k1": K1}, "k1"), TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- raw HTTP -------------------------------------------------------------------------


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    sock.settimeout(10)
    return sock


def _head(path: str, url: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(url).netloc
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def _send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send; False once the server has stopped reading and closed."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith(PROBLEM), headers
    document: dict[str, Any] = json.loads(body)
    assert document["status"] == expected and document["type"].startswith("urn:dunning:problem:")
    return document


def _declared_too_big(url: str, path: str, limit: int, extra: dict[str, str]) -> None:
    """A Content-Length over the limit is answered at once, before any body is sent."""
    with _connect(url) as sock:
        started = time.monotonic()
        sock.sendall(
            _head(
                path,
                url,
                {"Content-Type": "application/json", "Content-Length": str(limit + 1), **extra},
            )
        )
        status, headers, body = _read_response(sock)  # no body was sent at all
        assert time.monotonic() - started < 5
    document = _problem(status, headers, body, 413)
    assert document["type"] == "urn:dunning:problem:body-too-large"
    assert str(limit) in document["detail"]


def _chunked_too_big(url: str, path: str, limit: int, extra: dict[str, str]) -> None:
    """No Content-Length, a chunked body: counted as it streams, refused past the limit."""
    with _connect(url) as sock:
        sock.sendall(
            _head(
                path,
                url,
                {"Content-Type": "application/json", "Transfer-Encoding": "chunked", **extra},
            )
        )
        sent = 0
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        while sent <= limit and _send_quietly(sock, chunk):  # just past the limit, no end
            sent += CHUNK
        status, headers, body = _read_response(sock)
    document = _problem(status, headers, body, 413)
    assert document["type"] == "urn:dunning:problem:body-too-large"


# --- the HTTP API -----------------------------------------------------------------------


async def test_api_refuses_a_declared_body_over_the_limit_before_reading_it(
    api_url: str, who: dict[Role, Caller]
) -> None:
    # Raw sockets block: they run in a thread, the server in the test's event loop.
    auth = who[Role.service].headers
    for path in ("/cases", "/cases/L-1/payments", "/nowhere"):
        await asyncio.to_thread(_declared_too_big, api_url, path, MAX_API_BODY_BYTES, auth)


async def test_api_counts_a_chunked_body_as_it_streams_and_stops_at_the_limit(
    api_url: str, who: dict[Role, Caller]
) -> None:
    auth = who[Role.service].headers
    await asyncio.to_thread(_chunked_too_big, api_url, "/cases", MAX_API_BODY_BYTES, auth)
    # Before any token is checked:
    await asyncio.to_thread(_chunked_too_big, api_url, "/cases", MAX_API_BODY_BYTES, {})

    # httpx streaming a body of unknown length (chunked) gets the same answer.
    async def body() -> AsyncIterator[bytes]:
        for _ in range(MAX_API_BODY_BYTES // CHUNK + 2):
            yield b" " * CHUNK

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        answer = await http.post("/cases", content=body(), headers=who[Role.service].headers)
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)


async def test_api_refuses_a_negative_or_lying_content_length_and_keeps_serving(
    api_url: str, who: dict[Role, Caller]
) -> None:
    def negative() -> int:
        with _connect(api_url) as sock:
            sock.sendall(_head("/cases", api_url, {"Content-Length": "-5"}) + b"{}")
            status, _, _ = _read_response(sock)
        return status

    assert await asyncio.to_thread(negative) == 400

    def lying() -> tuple[int, bytes]:
        """Claims 2 bytes and sends far more than the limit: only 2 are ever read as the
        body, the rest is not a request, and the connection is closed."""
        auth = who[Role.service].headers
        with _connect(api_url) as sock:
            head = _head(
                "/cases",
                api_url,
                {**auth, "Content-Type": "application/json", "Content-Length": "2"},
            )
            sock.sendall(head + b"{}")
            for _ in range(MAX_API_BODY_BYTES // CHUNK + 2):
                if not _send_quietly(sock, b"x" * CHUNK):
                    break
            status, _, body = _read_response(sock)
        return status, body

    status, body = await asyncio.to_thread(lying)
    assert status == 422, body  # "{}" is read, and is not a case
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        assert (await http.get("/openapi.json")).status_code == 200


async def test_api_refuses_deeply_nested_json_with_422(
    api_url: str, who: dict[Role, Caller]
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    unclosed = b'{"loan": ' * 50_000
    just_too_deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        for path, caller in (("/cases", Role.service), ("/cases/L-1/pause", Role.operator)):
            for body in (deep, unclosed, just_too_deep):
                answer = await http.post(
                    path,
                    content=body,
                    headers={**who[caller].headers, "Content-Type": "application/json"},
                )
                assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
                problem = answer.json()
                assert problem["errors"] == [
                    {"field": "body", "problem": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
                ], problem
        # Brackets inside strings are text, not nesting.
        text = {"reason": "[" * 1000, "until": None}
        answer = await http.post("/cases/L-1/pause", json=text, headers=who[Role.operator].headers)
        assert answer.status_code != 422 or "nested" not in answer.text, answer.text


async def test_api_refuses_a_batch_over_its_size_and_opens_none_of_it(
    api_url: str, who: dict[Role, Caller]
) -> None:
    tag = f"{time.monotonic_ns() % 10**8:08d}"
    cases = [case_payload(f"L-batch-{tag}-{i}") for i in range(MAX_BATCH + 1)]
    body = json.dumps({"cases": cases}).encode()
    assert len(body) < MAX_API_BODY_BYTES  # the size is refused, not the bytes
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        answer = await http.post(
            "/cases",
            content=body,
            headers={**who[Role.service].headers, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["errors"] == [
            {"field": "cases", "problem": f"a list of 1 to {MAX_BATCH} cases"}
        ]
        first = await http.get(f"/cases/L-batch-{tag}-0", headers=who[Role.service].headers)
        assert first.status_code == 404


# --- the codec server -------------------------------------------------------------------

CODEC_AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_codec_server_refuses_a_declared_body_over_the_limit_before_reading_it(
    codec_url: str,
) -> None:
    _declared_too_big(codec_url, "/decode", MAX_CODEC_BODY_BYTES, CODEC_AUTH)


def test_codec_server_counts_a_chunked_body_and_stops_at_the_limit(codec_url: str) -> None:
    _chunked_too_big(codec_url, "/decode", MAX_CODEC_BODY_BYTES, CODEC_AUTH)


def test_codec_server_reads_a_small_chunked_body(codec_url: str) -> None:
    payload = json.dumps({"payloads": []}).encode()
    with _connect(codec_url) as sock:
        sock.sendall(
            _head("/decode", codec_url, {**CODEC_AUTH, "Transfer-Encoding": "chunked"})
            + f"{len(payload):x}\r\n".encode()
            + payload
            + b"\r\n0\r\n\r\n"
        )
        status, _, body = _read_response(sock)
    assert status == 200, body
    assert json.loads(body) == {}


def test_codec_server_refuses_a_negative_or_lying_content_length(codec_url: str) -> None:
    with _connect(codec_url) as sock:
        sock.sendall(_head("/decode", codec_url, {**CODEC_AUTH, "Content-Length": "-1"}) + b"{}")
        status, headers, body = _read_response(sock)
    _problem(status, headers, body, 400)

    # Claims more than it sends, then goes quiet: the server gives up instead of waiting
    # forever, and answers others meanwhile.
    with _connect(codec_url) as quiet:
        quiet.sendall(_head("/decode", codec_url, {**CODEC_AUTH, "Content-Length": "100"}) + b"{")
        with httpx.Client(base_url=codec_url, timeout=10) as http:
            fine = http.post("/decode", json={"payloads": []}, headers=CODEC_AUTH)
        assert fine.status_code == 200


def test_codec_server_refuses_deeply_nested_json_with_422(codec_url: str) -> None:
    with httpx.Client(base_url=codec_url, timeout=10) as http:
        for body in (b"[" * 100_000, b'{"payloads": ' * 50_000 + b"[]"):
            answer = http.post("/decode", content=body, headers=CODEC_AUTH)
            assert answer.status_code == 422, answer.text[:200]
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert answer.json()["errors"] == [
                {"field": "body", "problem": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
            ]
