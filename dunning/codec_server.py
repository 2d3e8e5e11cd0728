"""`dunning codec-server`: Temporal's codec server protocol, for the UI and the CLI.

Payloads are encrypted by the engine (`dunning.codec`), so the Temporal UI and
`temporal workflow show` see ciphertext. Pointed at this server, they send it the
payloads to read and get them back decrypted:

- `POST /decode` and `POST /encode`, body `{"payloads": [<Payload in proto JSON>]}`,
  answer the same shape (the UI also sends `X-Namespace`, ignored here);
- every POST needs `Authorization: Bearer <DUNNING_CODEC_SERVER_TOKEN>` (compared in
  constant time); anything else is 401 and nothing is decoded;
- CORS for the origins given (`--cors-origin`, the UI's address): preflight `OPTIONS`
  answers without a token, as browsers send none there;
- bodies are bounded (`dunning.request_limits`): a Content-Length over
  `MAX_CODEC_BODY_BYTES` is a 413 before anything is read, a chunked body is counted
  as it arrives and refused once past the limit, a negative or malformed
  Content-Length is a 400, a client that stops sending is dropped after
  `READ_TIMEOUT_S`, and JSON nested deeper than `MAX_JSON_DEPTH` is a 422; every
  error is an RFC 9457 problem document (`application/problem+json`);
- a browser signs in once: `GET /login` is a form, `POST /login` with the token sets
  a session cookie (HttpOnly, SameSite=Strict, 8 hours) that then authorises the
  Temporal UI's requests when its codec setting *Include cross-origin credentials* is
  on (the UI on :8233 and this server are the same site). `POST /logout` ends it.

The standard library's threading HTTP server: no framework, one process, small.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payloads

from dunning.codec import CodecError, EncryptionCodec
from dunning.problem_types import PROBLEM_JSON, document
from dunning.request_limits import (
    MAX_CODEC_BODY_BYTES,
    READ_TIMEOUT_S,
    TOO_DEEP,
    json_too_deep,
    too_large,
)

log = logging.getLogger("dunning.codec_server")

MAX_BODY = MAX_CODEC_BODY_BYTES
CHUNK_LINE_MAX = 1024  # a chunk-size line, extensions included
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
SESSION_COOKIE = "dunning_codec_session"
SESSION_SECONDS = 8 * 3600
LOGIN_FORM = b"""<!doctype html><meta charset="utf-8"><title>Dunning codec server</title>
<h1>Dunning codec server</h1>
<p>Sign in with the codec server's token to read decrypted cases in the Temporal UI
(turn on <em>Include cross-origin credentials</em> in its codec settings).</p>
<form method="post" action="/login"><input type="password" name="token" autofocus>
<button>Sign in</button></form>
"""


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        token: str,
        cors_origins: Iterable[str] = (),
    ) -> None:
        if not token:
            raise ValueError("the codec server needs a token (DUNNING_CODEC_SERVER_TOKEN)")
        self.codec = codec
        self.token = token
        self.cors_origins = frozenset(o.rstrip("/") for o in cors_origins)
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def open_session(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {s: t for s, t in self._sessions.items() if t > now}
            self._sessions[session] = now + SESSION_SECONDS
        return session

    def session_valid(self, session: str) -> bool:
        with self._lock:
            expires = self._sessions.get(session)
        return expires is not None and expires > time.monotonic()

    def close_session(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)


class _BodyRefused(Exception):
    """The body cannot be read: answered with this problem, and the connection closed."""

    def __init__(self, status: HTTPStatus, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S  # socket timeout of every read: a silent client is dropped

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("codec server: " + format, *args)

    def _cors(self) -> None:
        origin = (self.headers.get("Origin") or "").rstrip("/")
        if origin and origin in self.server.cors_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Vary", "Origin")

    def _reply(self, status: HTTPStatus, body: dict[str, Any] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self._cors()
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _problem(
        self,
        status: HTTPStatus,
        slug: str,
        detail: str | None = None,
        errors: list[dict[str, str]] | None = None,
        close: bool = False,
    ) -> None:
        data = json.dumps(document(int(status), slug, detail, errors)).encode("utf-8")
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", PROBLEM_JSON)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        """The request body, never more than `MAX_BODY` bytes read; raises _BodyRefused."""
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _BodyRefused(
                    HTTPStatus.BAD_REQUEST, "bad-request", "Transfer-Encoding: only chunked"
                )
            return self._read_chunked()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""  # HTTP/1.1: no length and no chunks means no body
        if not declared.strip().isdigit():
            raise _BodyRefused(
                HTTPStatus.BAD_REQUEST,
                "bad-request",
                "Content-Length: not a non-negative whole number",
            )
        length = int(declared)
        if length > MAX_BODY:
            raise _BodyRefused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body-too-large", too_large(MAX_BODY)
            )
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise _BodyRefused(
                HTTPStatus.BAD_REQUEST, "bad-request", "the body is shorter than its Content-Length"
            )
        return data

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(CHUNK_LINE_MAX)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text or size_text.startswith((b"-", b"+")):
                raise _BodyRefused(HTTPStatus.BAD_REQUEST, "bad-request", "malformed chunk size")
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BodyRefused(
                    HTTPStatus.BAD_REQUEST, "bad-request", "malformed chunk size"
                ) from None
            if size == 0:
                while self.rfile.readline(CHUNK_LINE_MAX) not in (b"\r\n", b"\n", b""):
                    pass  # trailers, ignored
                return bytes(body)
            if len(body) + size > MAX_BODY:  # refused before the chunk is read
                raise _BodyRefused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body-too-large", too_large(MAX_BODY)
                )
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(CHUNK_LINE_MAX).strip():
                raise _BodyRefused(HTTPStatus.BAD_REQUEST, "bad-request", "truncated chunk")
            body += chunk

    def do_OPTIONS(self) -> None:
        self._reply(HTTPStatus.NO_CONTENT)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/login":
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(LOGIN_FORM)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(LOGIN_FORM)
            return
        self._problem(
            HTTPStatus.METHOD_NOT_ALLOWED, "method-not-allowed", "POST /encode or /decode"
        )

    def _token_matches(self, token: str) -> bool:
        return hmac.compare_digest(token.strip().encode(), self.server.token.encode())

    def _session(self) -> str | None:
        try:
            cookies = SimpleCookie(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        morsel = cookies.get(SESSION_COOKIE)
        return morsel.value if morsel is not None else None

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization") or ""
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and token:
            return self._token_matches(token)
        session = self._session()
        return session is not None and self.server.session_valid(session)

    def _set_session(self, value: str, max_age: int) -> None:
        self.send_response(HTTPStatus.SEE_OTHER if max_age else HTTPStatus.OK)
        self.send_header(
            "Set-Cookie",
            f"{SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict",
        )
        body = b"signed in: the Temporal UI can now decode\n" if max_age else b"signed out\n"
        if max_age:
            self.send_header("Location", "/login?ok=1")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _login(self, raw: bytes) -> None:
        token = parse_qs(raw.decode("utf-8", "replace")).get("token", [""])[0]
        if not token or not self._token_matches(token):
            self._problem(HTTPStatus.UNAUTHORIZED, "unauthenticated", "wrong token")
            return
        self._set_session(self.server.open_session(), SESSION_SECONDS)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        action = path.rsplit("/", 1)[-1]
        try:
            raw = self._read_body()
        except _BodyRefused as refused:
            self._problem(refused.status, refused.slug, refused.detail, close=True)
            return
        except TimeoutError:
            self._problem(
                HTTPStatus.REQUEST_TIMEOUT, "bad-request", "the body did not arrive", close=True
            )
            return
        if action == "login":
            self._login(raw)
            return
        if action == "logout":
            session = self._session()
            if session is not None:
                self.server.close_session(session)
            self._set_session("", 0)
            return
        if action not in ("encode", "decode"):
            self._problem(HTTPStatus.NOT_FOUND, "not-found", "POST /encode or /decode")
            return
        if not self._authorised():
            self._problem(
                HTTPStatus.UNAUTHORIZED,
                "unauthenticated",
                "a valid bearer token or a signed-in session is required",
            )
            return
        if json_too_deep(raw):
            errors = [{"field": "body", "problem": TOO_DEEP}]
            self._problem(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid-input", TOO_DEEP, errors)
            return
        try:
            payloads = ParseDict(json.loads(raw or b"{}"), Payloads()).payloads
        except (ValueError, ParseError):
            self._problem(HTTPStatus.BAD_REQUEST, "bad-request", 'expected {"payloads": [...]}')
            return
        codec = self.server.codec
        run = codec.encode_sync if action == "encode" else codec.decode_sync
        try:
            done = run(payloads)
        except CodecError as exc:
            self._problem(HTTPStatus.BAD_REQUEST, "bad-request", str(exc))
            return
        self._reply(HTTPStatus.OK, MessageToDict(Payloads(payloads=done)))


def serve(server: CodecServer) -> None:
    try:
        server.serve_forever()
    finally:
        server.server_close()
