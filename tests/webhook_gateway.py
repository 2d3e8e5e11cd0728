"""A real local HTTP partner for the webhook provider: an idempotent receiver that
records every request it gets and accepts each Idempotency-Key once.

Faults on demand: `fail_status` answers every request with that status without
acting on it; `delay_s` acts on the request, then sleeps before answering (the
caller times out although the message went out, so its retry must be deduped).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from activities.providers.webhook import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookUrls,
    verify,
)

CALL_OUTCOME = "no_answer"


@dataclass
class Received:
    key: str
    path: str
    signed: bool
    body: dict[str, Any]
    status: int = 0
    at: float = field(default_factory=time.time)  # when it arrived (epoch seconds)


@dataclass
class Gateway:
    secret: bytes
    requests: list[Received] = field(default_factory=list)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    fail_status: int | None = None
    fail_cases: dict[str, int] = field(default_factory=dict)  # case id -> status, for good
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def urls(self) -> WebhookUrls:
        base = f"http://127.0.0.1:{self.port}"
        return WebhookUrls(
            {"sms": f"{base}/sms", "dialer": f"{base}/call", "field": f"{base}/field",
             "legal": f"{base}/legal", "mail": f"{base}/mail"}
        )  # fmt: skip

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        key = headers.get(KEY_HEADER, "")
        signed = verify(
            self.secret, headers.get(TIMESTAMP_HEADER, ""), raw, headers.get(SIGNATURE_HEADER, "")
        )
        body = json.loads(raw) if raw else {}
        received = Received(key=key, path=path, signed=signed, body=body)
        with self.lock:
            self.requests.append(received)
            if not signed or not key or body.get("idempotency_key") != key:
                received.status = 401 if not signed else 400
                return received.status, {"error": "bad request"}
            if self.fail_status is not None:
                received.status = self.fail_status
                return received.status, {"error": "unavailable"}
            if body.get("case_id") in self.fail_cases:
                received.status = self.fail_cases[body["case_id"]]
                return received.status, {"error": "refused"}
            duplicate = key in self.delivered
            if not duplicate:
                self.accepted.append(key)
                self.delivered[key] = {
                    "path": path,
                    "body": body,
                    "provider_ref": f"gw-{len(self.delivered) + 1}",
                }
            received.status = 200
            answer = {
                "provider_ref": self.delivered[key]["provider_ref"],
                "duplicate": duplicate,
            }
            if path == "/call":
                answer["outcome"] = CALL_OUTCOME
            return 200, answer

    def received_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(r.key for r in self.requests)

    def accepted_counts(self) -> Counter[str]:
        """How many times each key was acted on (a proper receiver: once)."""
        with self.lock:
            return Counter(self.accepted)

    def delivered_keys(self, case_id: str, channel: str | None = None) -> list[str]:
        with self.lock:
            return [
                key
                for key, d in self.delivered.items()
                if d["body"]["case_id"] == case_id
                and (channel is None or d["body"]["channel"] == channel)
            ]

    def requested_cases(self) -> set[str]:
        """Cases the provider has asked about at least once (answered or not)."""
        with self.lock:
            return {str(r.body.get("case_id")) for r in self.requests}

    def retries(self) -> int:
        """Requests beyond the first per key: retries the provider made."""
        with self.lock:
            return len(self.requests) - len({r.key for r in self.requests})


@contextmanager
def running_gateway(secret: bytes) -> Iterator[Gateway]:
    gateway = Gateway(secret=secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, answer = gateway.handle(self.path, self.headers, raw)
            if gateway.delay_s:
                threading.Event().wait(gateway.delay_s)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller gave up (timed out) meanwhile

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gateway.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
