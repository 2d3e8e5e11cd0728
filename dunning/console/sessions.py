"""Console sessions: a signed cookie, no server-side state, never the token itself.

The cookie holds the SHA-256 of the token the user signed in with (as `api_tokens`
stores it: every request looks it up again, so revoking the token ends the session),
the CSRF token of the session's forms, the language and when the session was last
used. It is signed with HMAC-SHA-256 (`console_secret`) and sent back `HttpOnly`,
`SameSite=Strict`, `Path=/ui` (`Secure` over https). A session unused for
`console_idle_minutes` is over: the next request is sent to sign in.

Before sign-in the cookie is anonymous (a CSRF token and a language only), so the
sign-in form is CSRF-protected too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import Literal

from dunning.settings import Settings

COOKIE = "dunning_console"
PATH = "/ui"
Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")
_MAX_COOKIE = 1024


@dataclass(frozen=True)
class Session:
    csrf: str
    seen: int  # seconds since the epoch: the last request
    language: Language = "en"
    token_hash: str | None = None  # None: not signed in

    @property
    def signed_in(self) -> bool:
        return self.token_hash is not None

    def touched(self, now: int) -> Session:
        return replace(self, seen=now)


def new_session(language: Language = "en", token_hash: str | None = None) -> Session:
    """A fresh session (a new CSRF token: signing in gets one too)."""
    return Session(
        csrf=secrets.token_urlsafe(24),
        seen=int(time.time()),
        language=language,
        token_hash=token_hash,
    )


class Signer:
    """Signs and reads session cookies with one key."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.console_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("console_secret: at least 32 characters")
        self._key = (
            secret.get_secret_value().encode("utf-8")
            if secret is not None
            else secrets.token_bytes(32)
        )
        self.idle_seconds = settings.console_idle_minutes * 60

    def _mac(self, body: bytes) -> str:
        digest = hmac.new(self._key, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def dump(self, session: Session) -> str:
        data = {"c": session.csrf, "s": session.seen, "l": session.language}
        if session.token_hash is not None:
            data["t"] = session.token_hash
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        return f"{body.decode('ascii').rstrip('=')}.{self._mac(body.rstrip(b'='))}"

    def load(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None if it is missing, forged or malformed
        (an expired one is returned: `expired` tells)."""
        if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body.encode("ascii", "replace"))):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            language: Language = next((known for known in LANGUAGES if known == data["l"]), "en")
            token = data.get("t")
            return Session(
                csrf=str(data["c"]),
                seen=int(data["s"]),
                language=language,
                token_hash=str(token) if token is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            return None

    def expired(self, session: Session, now: int) -> bool:
        return now - session.seen > self.idle_seconds


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    """Whether a form's CSRF token is its session's (compared in constant time)."""
    if session is None or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "replace"))
