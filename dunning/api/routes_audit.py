"""The audit, for auditors (`auth.AUDIT`): a case's verify result and its export, what
`dunning audit verify` and `dunning audit export` give, from the same functions (the
console's audit page calls these too).

The export holds personal data in clear (the workflow input in the histories), so it
is a POST with a reason (`schemas.reveals.RevealTerms`), recorded in `audit_reveals`
before the zip is made; each download is recorded, so an `Idempotency-Key` (whose
replay would hand the zip out again, unrecorded, and keep a copy) is refused.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from activities.checkpoints import SigningKeyError
from dunning.api import auth
from dunning.api.cases import case_id_from_path
from dunning.api.idempotency import HEADER as IDEMPOTENCY_KEY
from dunning.api.problems import Problem, invalid
from dunning.api.routes_cases import problems
from dunning.api.services import Services, services
from dunning.api.tokens import Principal
from dunning.audit.export import archive_name, recorded_export
from dunning.audit.verify import CaseReport, verify_case
from dunning.db import checkpoints
from schemas.reveals import RevealTerms

router = APIRouter(tags=["audit"])
NO_STORE = {"Cache-Control": "no-store"}


class VerifyProblem(BaseModel):
    seq: int | None = Field(description="the row, when the problem is at one")
    check: str = Field(description="chain, fold, live, anchor or checkpoint")
    detail: str


class VerifyReport(BaseModel):
    """What `dunning audit verify --json` prints for one case."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    ok: bool
    rows: int
    legacy_rows: int = Field(description="rows written before the chain existed")
    head_hash: str | None
    live: str = Field(description="how the case was compared with its workflow")
    anchor: str = Field(description="the head recorded in the case's Temporal history")
    checkpoint: str = Field(description="the last good signed checkpoint")
    problems: list[VerifyProblem]


async def verified(current: Services, case_id: str) -> tuple[CaseReport, str | None]:
    """`verify_case` live, with the signed checkpoints if the settings give keys (as
    `dunning audit verify`); and why they were not checked, if a key is unreadable."""
    try:
        keys = checkpoints.verifier(current.settings)
        unreadable = None
    except SigningKeyError as exc:
        keys, unreadable = None, str(exc)
    report = await verify_case(current.pool, case_id, current.client, keys=keys)
    return report, unreadable


def unknown(report: CaseReport) -> bool:
    """No audit row and no workflow: no such case."""
    return report.rows == 0 and report.anchor == "no workflow"


async def export_download(
    current: Services, case_id: str, auditor: str, reason: str
) -> FileResponse | None:
    """The recorded export as a zip download (`no-store`), its folder removed once sent;
    None for an unknown case (nothing recorded)."""
    directory = Path(tempfile.mkdtemp(prefix="dunning-export-"))
    try:
        archive = await recorded_export(
            current.pool, current.client, case_id, auditor, reason, directory
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if archive is None:
        shutil.rmtree(directory, ignore_errors=True)
        return None
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=archive_name(case_id),
        headers=NO_STORE,
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )


@router.get(
    "/cases/{case_id}/verify",
    summary="Verify a case's audit log",
    description="The hash chain, the fold, the anchors in the case's Temporal history, "
    "the signed checkpoints (when the server has keys) and the live case, as "
    "`dunning audit verify --json`: `ok` false with the problems when anything is broken.",
    response_model=VerifyReport,
    responses=problems(401, 403, 404),
)
async def case_verify(
    case_id: str, request: Request, _: Principal = Depends(auth.allow(auth.AUDIT))
) -> VerifyReport:
    case_id = case_id_from_path(case_id)
    report, _unreadable = await verified(services(request), case_id)
    if unknown(report):
        raise Problem(404, "case-not-found", f"no case {case_id}")
    return VerifyReport.model_validate(report.as_json())


@router.post(
    "/cases/{case_id}/export",
    summary="Download a case's export (recorded)",
    description="What `dunning audit export` writes, as a zip: the audit rows (JSONL), "
    "every run's Temporal history and `manifest.json` (SHA-256 of each file, the head "
    "hash). It holds personal data in clear: the reason and the caller are recorded in "
    "`audit_reveals` first. No `Idempotency-Key`: each download is recorded.",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, **problems(401, 403, 404, 422)},
)
async def case_export(
    case_id: str,
    terms: RevealTerms,
    request: Request,
    principal: Principal = Depends(auth.allow(auth.AUDIT)),
) -> FileResponse:
    if IDEMPOTENCY_KEY in request.headers:
        raise invalid(
            [{"field": IDEMPOTENCY_KEY, "problem": "not accepted: each export is recorded"}]
        )
    case_id = case_id_from_path(case_id)
    download = await export_download(services(request), case_id, principal.name, terms.reason)
    if download is None:
        raise Problem(404, "case-not-found", f"no case {case_id}")
    return download
