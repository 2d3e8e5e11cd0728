"""`dunning codec-server`: Temporal's codec server protocol, for the UI and the CLI.

Payloads are encrypted by the engine (`dunning.codec`), so the Temporal UI and
`temporal workflow show` see ciphertext. Pointed at this server, they send it the
payloads to read and get them back decrypted:

- `POST /decode` and `POST /encode`, body `{"payloads": [<Payload in proto JSON>]}`,
  answer the same shape (the UI also sends `X-Namespace`, ignored here);
- every POST needs `Authorization: Bearer <DUNNING_CODEC_SERVER_TOKEN>` (compared in
  constant time); anything else is 401 and nothing is decoded;
- CORS for the origins given (`--cors-origin`, the UI's address): preflight `OPTIONS`
  answers without a token, as browsers send none there.

The standard library's threading HTTP server: no framework, one process, small.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payloads

from dunning.codec import CodecError, EncryptionCodec

log = logging.getLogger("dunning.codec_server")

MAX_BODY = 8 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


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
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"

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

    def do_OPTIONS(self) -> None:
        self._reply(HTTPStatus.NO_CONTENT)

    def do_GET(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST /encode or /decode"})

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization") or ""
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self.server.token.encode())

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        action = path.rsplit("/", 1)[-1]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            return
        raw = self.rfile.read(length) if length else b""
        if action not in ("encode", "decode"):
            self._reply(HTTPStatus.NOT_FOUND, {"error": "POST /encode or /decode"})
            return
        if not self._authorised():
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "a valid bearer token is required"})
            return
        try:
            payloads = ParseDict(json.loads(raw or b"{}"), Payloads()).payloads
        except (ValueError, ParseError):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": 'expected {"payloads": [...]}'})
            return
        codec = self.server.codec
        run = codec.encode_sync if action == "encode" else codec.decode_sync
        try:
            done = run(payloads)
        except CodecError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._reply(HTTPStatus.OK, MessageToDict(Payloads(payloads=done)))


def serve(server: CodecServer) -> None:
    try:
        server.serve_forever()
    finally:
        server.server_close()
