"""The e-mail provider: each attempt of the `email` channel is one message handed to
an SMTP server (`aiosmtplib`), with a `List-Unsubscribe` header.

SMTP has no idempotency key, so the provider keeps its own ledger in the outbox table
(one row per idempotency key, written once the server accepted the message): an
attempt retried after the server accepted it is answered from the ledger and not sent
again. Between the server's acceptance and the ledger's row (a worker killed in that
instant) a retry sends again, with the same `Message-ID` (derived from the key), which
receiving systems use to drop the copy.

A template's first line is the subject (`Subject: ...`), the rest the body. Errors are
sorted for the retry policy like the webhook's: a 5xx refusal (a recipient refused, a
message refused) fails the attempt for good; a 4xx, a timeout, a connection or an
authentication error is retried. Error messages name the SMTP code, never the address.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

import aiosmtplib
import asyncpg
from temporalio.exceptions import ApplicationError

from activities.providers.base import Content
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import CHANNELS

SUBJECT_PREFIX = "Subject:"
# CRLF line ends; long ASCII headers (List-Unsubscribe) are not RFC 2047-encoded to fold them.
POLICY = policy.SMTP.clone(max_line_length=998)
LEDGER = "SELECT case_id, channel FROM outbox WHERE idempotency_key = $1"
RECORD = """
INSERT INTO outbox (idempotency_key, case_id, channel, recipient, template, body, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
"""


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int
    sender: str | None  # the From address
    security: str = "starttls"  # "none" | "starttls" | "tls"
    username: str | None = None
    password: str | None = None
    unsubscribe: str | None = None  # mailto: or https: URL; None: mailto:<sender>
    timeout_s: float = 10.0


class SmtpProvider:
    """The `email` partner over SMTP."""

    def __init__(self, config: SmtpConfig, pool: asyncpg.Pool) -> None:
        self._config = config
        self._pool = pool
        self.call_timeout_s = config.timeout_s

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        config = self._config
        if not config.host or not config.sender:
            raise ApplicationError(
                "e-mail is not configured: set DUNNING_SMTP_HOST and DUNNING_SMTP_FROM",
                type="ProviderNotConfigured",
                non_retryable=True,
            )
        async with self._pool.acquire() as conn:
            seen = await conn.fetchrow(LEDGER, request.idempotency_key)
        if seen is not None:
            if seen["case_id"] != request.case_id or seen["channel"] != request.channel:
                raise ValueError("idempotency key reused for a different message")
            return self._receipt(request, duplicate=True)
        message = build_message(request, content.text or "", config)
        await self._send(message, request.recipient)
        async with self._pool.acquire() as conn:
            await conn.execute(
                RECORD,
                request.idempotency_key,
                request.case_id,
                request.channel,
                request.recipient,
                request.template,
                content.text,
                json.dumps({"stage": request.stage, "language": request.language, "via": "smtp"}),
            )
        return self._receipt(request, duplicate=False)

    def _receipt(self, request: OutboundRequest, *, duplicate: bool) -> ProviderReceipt:
        return ProviderReceipt(
            provider_ref=message_id(request.idempotency_key, self._config.sender or ""),
            outcome=CHANNELS[request.channel].default_outcome,
            duplicate=duplicate,
        )

    async def _send(self, message: EmailMessage, recipient: str) -> None:
        config = self._config
        try:
            await aiosmtplib.send(
                message.as_bytes(policy=POLICY),  # aiosmtplib would refold at 78
                sender=config.sender,
                recipients=[recipient],
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.security == "tls",
                start_tls=True if config.security == "starttls" else False,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            raise ApplicationError(
                f"email refused by the SMTP server: recipient refused ({codes})",
                type="ProviderRejected",
                non_retryable=all(code >= 500 for code in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ApplicationError(
                f"email refused by the SMTP server: {exc.code}",
                type="ProviderRejected" if exc.code >= 500 else "ProviderUnavailable",
                non_retryable=exc.code >= 500
                and not isinstance(exc, aiosmtplib.SMTPAuthenticationError),
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ApplicationError(
                f"SMTP server unreachable: {type(exc).__name__}", type="ProviderUnavailable"
            ) from None


def message_id(idempotency_key: str, sender: str) -> str:
    """`<hash of the key@the sender's domain>`: the same for every retry of an attempt."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "dunning.invalid"
    return f"<{digest}@{domain}>"


def unsubscribe_header(config: SmtpConfig, case_id: str) -> str:
    """RFC 2369 `List-Unsubscribe`: a mailto with the case named in the subject (the
    mailbox behind it records `cease_contact channel=email`), or the lender's URL."""
    target = config.unsubscribe or f"mailto:{config.sender}"
    if target.startswith("mailto:"):
        joiner = "&" if "?" in target else "?"
        return f"<{target}{joiner}subject={quote(f'unsubscribe {case_id}')}>"
    joiner = "&" if "?" in target else "?"
    return f"<{target}{joiner}case={quote(case_id)}>"


def build_message(request: OutboundRequest, text: str, config: SmtpConfig) -> EmailMessage:
    """The message of a rendered template: its `Subject:` line, then the body."""
    first, _, rest = text.partition("\n")
    if not first.startswith(SUBJECT_PREFIX):
        raise ApplicationError(
            f"template {request.template!r} ({request.language}): an e-mail template starts "
            f"with a {SUBJECT_PREFIX!r} line",
            type="TemplateError",
            non_retryable=True,
        )
    message = EmailMessage(policy=POLICY)
    message["From"] = config.sender or ""
    message["To"] = request.recipient
    message["Subject"] = first.removeprefix(SUBJECT_PREFIX).strip()
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(request.idempotency_key, config.sender or "")
    message["List-Unsubscribe"] = unsubscribe_header(config, request.case_id)
    message["Content-Language"] = request.language
    message.set_content(rest.strip() + "\n")
    return message
