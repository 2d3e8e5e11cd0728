"""Shared by the case routes: case ids from paths, and case errors as problems."""

from __future__ import annotations

import re

from dunning import case_client
from dunning.api.problems import Problem
from schemas.refusals import Refusal, RefusalKind

# A refusal's kind decides the status; its code is the problem's type.
REFUSAL_STATUS: dict[RefusalKind, int] = {
    RefusalKind.conflict: 409,
    RefusalKind.invalid: 422,
    RefusalKind.forbidden: 403,
    RefusalKind.unavailable: 503,
}
REFUSAL_TITLE: dict[RefusalKind, str] = {
    RefusalKind.conflict: "The case refused the action",
    RefusalKind.invalid: "The input does not fit this case",
    RefusalKind.forbidden: "Needs another principal",
    RefusalKind.unavailable: "A dependency did not answer; nothing was recorded",
}

# `case-<loan id>` or the loan id (schemas.case.Identifier).
_LOAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def case_id_from_path(value: str) -> str:
    """The case id for a path segment; anything that cannot be a case is a 404."""
    case_id = case_client.normalise_case_id(value)
    if not _LOAN_ID.fullmatch(case_id.removeprefix("case-")):
        raise Problem(404, "case-not-found", "no such case")
    return case_id


def case_problem(exc: case_client.CaseError, case_id: str) -> Problem:
    if isinstance(exc, case_client.CaseNotFound):
        return Problem(404, "case-not-found", f"no case {case_id}")
    if isinstance(exc, case_client.CaseClosed):
        return Problem(409, "case-closed", f"case {case_id} is closed")
    if isinstance(exc, case_client.ActionRejected):
        return refusal_problem(exc.code, exc.reason)
    return Problem(409, "rejected", str(exc))


def refusal_problem(code: Refusal | None, reason: str) -> Problem:
    """`urn:dunning:problem:refused:<code>`, with `code` as a member too."""
    if code is None:
        return Problem(409, "rejected", reason)
    return Problem(
        REFUSAL_STATUS[code.kind],
        f"refused:{code.value}",
        reason,
        title=REFUSAL_TITLE[code.kind],
        extra={"code": code.value},
    )
