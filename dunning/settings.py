"""Settings, from the environment or `.env` (prefix `DUNNING_`).

Defaults point at the embedded local stack (`dunning dev up`), so a fresh clone
runs with no configuration; production sets real addresses instead.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.channels import Partner

EMBEDDED_PG_PORT = 54329
EMBEDDED_TEMPORAL_PORT = 7233
EMBEDDED_TEMPORAL_UI_PORT = 8233
# The database role whose privileges the application has (dunning/db/grants.sql): the
# worker's and the API's user is it, or a member of it. Migrations run as the owner.
APP_ROLE = "dunning_app"
EMBEDDED_SUPERUSER = "postgres"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DUNNING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    temporal_address: str = Field(
        default=f"127.0.0.1:{EMBEDDED_TEMPORAL_PORT}",
        description="host:port of the Temporal frontend",
    )
    temporal_namespace: str = "default"
    task_queue: str = "dunning"
    database_url: str = Field(
        default=f"postgresql://{APP_ROLE}@127.0.0.1:{EMBEDDED_PG_PORT}/dunning",
        description="PostgreSQL URL of the audit store for the worker, the API and the CLI: "
        f"a user with the {APP_ROLE} role's privileges only (append, read)",
    )
    database_owner_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the schema's owner, for migrations and tokens only; "
        f"unset: {EMBEDDED_SUPERUSER} on the same server when database_url's user is "
        f"{APP_ROLE} (the embedded stack), else database_url itself",
    )
    state_dir: Path = Field(
        default=Path(".dunning"),
        description="where the embedded stack keeps its data, logs and pid files",
    )
    temporal_ui_port: int = EMBEDDED_TEMPORAL_UI_PORT
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    workflow_task_slots: int = Field(
        default=4,
        ge=2,
        description="workflow tasks a worker runs at once; workflow code holds the GIL, so "
        "more slots than a few per core only make each task slower (and trip Temporal's "
        "2-second deadlock detector under load) without adding throughput",
    )
    activity_slots: int = Field(default=100, ge=1, description="activities a worker runs at once")
    provider: Literal["sandbox", "webhook"] = Field(
        default="sandbox",
        description="sandbox: record outbound messages in the outbox table; webhook: POST "
        "them to the partners' URLs below (docs/providers.md)",
    )
    webhook_sms_url: str | None = Field(default=None, description="SMS gateway endpoint")
    webhook_dialer_url: str | None = Field(default=None, description="dialer endpoint")
    webhook_field_url: str | None = Field(default=None, description="field agency endpoint")
    webhook_legal_url: str | None = Field(default=None, description="legal partner endpoint")
    webhook_mail_url: str | None = Field(
        default=None,
        description="print-and-mail house endpoint (the `letter` channel); unset: letters "
        "are refused (not configured) with provider=webhook",
    )
    partner_rates: dict[Partner, PositiveFloat] = Field(
        default_factory=dict,
        description="attempts per second each partner accepts, as JSON {partner: rate} "
        '(e.g. {"sms": 20}); enforced by Temporal on the partner\'s task queue across all '
        "workers; a partner not named is not paced (docs/providers.md, Pacing)",
    )
    partner_lines: dict[Partner, PositiveInt] = Field(
        default_factory=dict,
        description="attempts each partner carries at once per worker process, as JSON "
        '{partner: lines} (e.g. {"dialer": 30}: a dialer\'s lines); a partner not named: '
        "activity_slots",
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="shared secret of the X-Dunning-Signature HMAC"
    )
    webhook_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="per-request timeout; keep it under the 10 s provider activity timeout",
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server the `email` channel hands messages to; unset: e-mails go "
        "to the sandbox outbox with provider=sandbox, and are refused (not configured) "
        "with provider=webhook",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port")
    smtp_from: str | None = Field(
        default=None, description="the From address of every e-mail (the lender's)"
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade the connection (port 587); tls: TLS from the first "
        "byte (port 465); none: plain text (a relay on localhost only)",
    )
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, if any")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    smtp_unsubscribe: str | None = Field(
        default=None,
        description="the List-Unsubscribe target (mailto: or https: URL); unset: "
        "mailto:<smtp_from>",
    )
    smtp_timeout_s: float = Field(
        default=8.0, gt=0, description="per-message timeout; under the 10 s activity timeout"
    )
    policy_dir: Path | None = Field(
        default=None, description="extra folder searched for policy files before the shipped ones"
    )
    strategy: str | None = Field(
        default="default",
        description="the active strategy (NAME or NAME@VERSION): chooses the policy of every "
        "case that does not name one; empty or 'none': no strategy, such cases get `default`",
    )
    strategy_dir: Path | None = Field(
        default=None,
        description="extra folder searched for strategy files before the shipped ones",
    )
    template_dir: Path | None = Field(
        default=None,
        description="extra folder of message templates (<language>/<name>.j2), searched first",
    )
    encryption: bool = Field(
        default=True,
        description="encrypt Temporal payloads (AES-256-GCM, dunning.codec); off only for tests",
    )
    codec_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="payload keys as JSON {id: base64 of 32 bytes}; empty: the embedded "
        "stack's <state_dir>/codec-keys.json",
    )
    codec_key_id: str | None = Field(
        default=None, description="the key id that encrypts; the others only decrypt (rotation)"
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="base64 of the 32-byte Ed25519 private key workers sign audit head "
        "checkpoints with; unset: the embedded stack's <state_dir>/audit-signing-key.json",
    )
    audit_verify_keys: list[str] = Field(
        default_factory=list,
        description="base64 Ed25519 public keys `dunning audit verify` accepts on "
        "checkpoints (JSON list; older keys after a rotation); the signing key's own is "
        "always accepted",
    )
    codec_server_token: SecretStr | None = Field(
        default=None, description="bearer token `dunning codec-server` requires"
    )

    console_secret: SecretStr | None = Field(
        default=None,
        description="the key the browser console signs its session cookies with (32+ "
        "characters); unset: a random key per process (sessions end when it restarts)",
    )
    console_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="a console session ends after this many minutes without a request",
    )

    @property
    def owner_database_url(self) -> str:
        """Where migrations (and token management) connect: the schema's owner."""
        if self.database_owner_url:
            return self.database_owner_url
        url = urlsplit(self.database_url)
        if url.username != APP_ROLE:
            return self.database_url  # one user does both, as before the roles
        host = url.hostname or "127.0.0.1"
        netloc = f"{EMBEDDED_SUPERUSER}@{host}" + (f":{url.port}" if url.port else "")
        return urlunsplit(url._replace(netloc=netloc))

    @field_validator("strategy", mode="before")
    @classmethod
    def _no_strategy(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("codec_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: Any) -> Any:
        """Accept the JSON text too (the environment's form, as compose passes it)."""
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
