"""The agreement activities: a promise, plan or settlement becomes a stored document.

The document is rendered from a reviewed template (`agreement_<kind>.j2`) in the
borrower's language and stored once in `agreements` with the SHA-256 of its UTF-8
body, keyed by the storing request's idempotency key, so a retry finds the document
it stored before.

- `store_agreement` (decision rules 3): the document only. The workflow stores it
  before recording the agreement; the confirmation SMS is a contact of its own,
  decided through the compliance guard.
- `record_agreement` (rules 1-2, kept for their runs): the document and the
  confirmation SMS in one activity.
"""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import jinja2
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_store import refused_for_good
from activities.providers.base import SmsGateway
from activities.templates import TemplateError, Templates
from schemas.activity_io import (
    AgreementReceipt,
    AgreementRequest,
    OutboundRequest,
    agreement_reference,
)

log = structlog.get_logger("dunning.activities")

CONFIRMATION_TEMPLATE = "agreement_confirmation"

# What each kind's template needs in `AgreementRequest.variables` (strings, already
# formatted: amounts as decimals, dates as the borrower's local ISO dates).
REQUIRED: dict[str, tuple[str, ...]] = {
    "promise": ("name", "loan_id", "currency", "amount", "pay_by", "balance", "operator"),
    "plan": ("name", "loan_id", "currency", "amount", "balance", "operator"),
    "settlement": (
        "name",
        "loan_id",
        "currency",
        "amount",
        "pay_by",
        "balance",
        "waiver",
        "operator",
    ),
}

INSERT = """
INSERT INTO agreements (case_id, agreement_seq, kind, language, body, sha256, request_key)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (request_key) DO NOTHING
RETURNING id
"""
EXISTING = "SELECT id, kind, sha256 FROM agreements WHERE request_key = $1"


def reference(request: AgreementRequest) -> str:
    return agreement_reference(request.case_id, request.agreement_seq)


def render_document(templates: Templates, request: AgreementRequest) -> str:
    """The agreement's text; raises ApplicationError (non-retryable) when it cannot be made."""
    required = REQUIRED.get(request.kind)
    if required is None:
        raise ApplicationError(f"unknown agreement kind {request.kind!r}", non_retryable=True)
    missing = [name for name in required if name not in request.variables]
    if missing:
        raise ApplicationError(
            f"agreement {request.kind}: missing variables {', '.join(missing)}",
            non_retryable=True,
        )
    if request.kind == "plan" and not request.schedule:
        raise ApplicationError("agreement plan: empty schedule", non_retryable=True)
    variables: dict[str, Any] = {
        **request.variables,
        "kind": request.kind,
        "reference": reference(request),
        "schedule": [tuple(line) for line in request.schedule],
    }
    return _render(templates, f"agreement_{request.kind}", request.language, variables)


def confirmation(templates: Templates, request: AgreementRequest) -> str:
    variables: dict[str, Any] = {
        name: request.variables[name]
        for name in ("name", "loan_id", "amount", "currency", "pay_by")
        if name in request.variables and not (name == "pay_by" and request.kind == "plan")
    }
    variables.update(kind=request.kind, reference=reference(request))
    return _render(templates, CONFIRMATION_TEMPLATE, request.language, variables)


def _render(templates: Templates, template: str, language: str, variables: dict[str, Any]) -> str:
    try:
        return templates.render(template, language, variables)
    except (TemplateError, jinja2.TemplateError) as exc:
        # An unknown template or variable is a bug in the request or the templates:
        # retrying cannot fix it. The message names the template, never the values.
        raise ApplicationError(
            f"template {template!r} ({language}): {type(exc).__name__}: {exc}",
            non_retryable=True,
        ) from exc


def sha256_hex(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class AgreementActivities:
    def __init__(self, pool: asyncpg.Pool, sms_gateway: SmsGateway, templates: Templates) -> None:
        self._templates = templates
        self._pool = pool
        self._sms = sms_gateway

    @activity.defn(name="store_agreement")
    async def store_agreement(self, request: AgreementRequest) -> AgreementReceipt:
        body = render_document(self._templates, request)
        try:
            document_id, digest, stored = await self._store(request, body)
        except asyncpg.PostgresError as exc:
            if not refused_for_good(exc):
                raise  # a passing outage: retried until the update's deadline
            # The store refuses the document for good: the update is refused at once.
            raise ApplicationError(
                f"the agreements store refused the document: {type(exc).__name__} "
                f"(SQLSTATE {exc.sqlstate})",
                type="AgreementRefused",
                non_retryable=True,
            ) from None
        log.info(
            "agreement stored",
            case_id=request.case_id,
            kind=request.kind,
            agreement_seq=request.agreement_seq,
            document_id=document_id,
            stored=stored,
            attempt=activity.info().attempt,
        )
        return AgreementReceipt(document_id=document_id, sha256=digest)

    @activity.defn(name="record_agreement")
    async def record_agreement(self, request: AgreementRequest) -> AgreementReceipt:
        body = render_document(self._templates, request)
        document_id, digest, stored = await self._store(request, body)
        sms = OutboundRequest(
            case_id=request.case_id,
            idempotency_key=request.idempotency_key,
            channel="sms",
            stage="agreement",
            recipient=request.recipient,
            language=request.language,
            template=CONFIRMATION_TEMPLATE,
            variables={},
        )
        receipt = await self._sms.send_sms(sms, confirmation(self._templates, request))
        info = activity.info()
        log.info(
            "agreement recorded",
            case_id=request.case_id,
            workflow_id=info.workflow_id,
            kind=request.kind,
            agreement_seq=request.agreement_seq,
            document_id=document_id,
            stored=stored,
            sms_duplicate=receipt.duplicate,
            attempt=info.attempt,
        )
        return AgreementReceipt(
            document_id=document_id, sha256=digest, provider_ref=receipt.provider_ref
        )

    async def _store(self, request: AgreementRequest, body: str) -> tuple[str, str, bool]:
        """(document id, sha256, stored now): a retry of the same request finds the
        document it stored; a different document under the same key is refused."""
        digest = sha256_hex(body)
        async with self._pool.acquire() as conn:
            row_id = await conn.fetchval(
                INSERT,
                request.case_id,
                request.agreement_seq,
                request.kind,
                request.language,
                body,
                digest,
                request.idempotency_key,
            )
            if row_id is not None:
                return str(row_id), digest, True
            existing = await conn.fetchrow(EXISTING, request.idempotency_key)
        if existing is None:  # pragma: no cover - the row cannot vanish (append-only)
            raise RuntimeError("agreement row conflicted but is not there")
        if existing["kind"] != request.kind or existing["sha256"] != digest:
            raise ApplicationError(
                f"agreement request {request.idempotency_key} already stored another "
                f"document ({existing['kind']})",
                type="AgreementConflict",
                non_retryable=True,
            )
        return str(existing["id"]), str(existing["sha256"]), False
