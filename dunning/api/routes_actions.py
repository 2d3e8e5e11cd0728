"""Actions on a live case: each is one of the case's workflow updates.

The request body has what the action needs and the reason; who acts comes from the
token (its name is the command's `operator`, a payment's `source`). The case checks
the action: a refusal is a 409 problem with the case's reason, and nothing is
recorded. A settlement past the policy's approval threshold needs a supervisor: a
supervisor's token approves it (`supervisor` is the token's name) on behalf of the
operator named in the body; an operator's is refused with 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from dunning import case_client
from dunning.api import auth
from dunning.api.cases import case_id_from_path, case_problem
from dunning.api.problems import Problem, from_validation_error
from dunning.api.routes_cases import problems
from dunning.api.services import services
from dunning.api.tokens import Principal, Role
from dunning.policies import PolicyError, load
from schemas.commands import (
    COMMAND,
    MAX_INSTALMENTS,
    CeaseChannel,
    CeaseContact,
    DisputeOpen,
    DisputeResolve,
    HardStop,
    HardStopKind,
    Instalment,
    MigratePolicy,
    OperatorAction,
    Pause,
    Payment,
    PromiseToPay,
    Reason,
    RepaymentPlan,
    Resume,
    Settlement,
    ThirdPartyOptOut,
    VisitBooking,
    VisitReport,
    WriteOff,
)
from schemas.money import PositiveAmount
from schemas.status import CaseStatus

router = APIRouter(tags=["actions"])


# --- request bodies: the commands without who acts ---------------------------------------


class Reasoned(BaseModel):
    model_config = COMMAND

    reason: str = Reason


class PaymentBody(BaseModel):
    model_config = COMMAND

    amount: PositiveAmount
    reference: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")


class PauseBody(Reasoned):
    until: AwareDatetime | None = Field(
        default=None, description="resume by itself at this instant; open-ended if omitted"
    )


class PromiseBody(Reasoned):
    amount: PositiveAmount
    pay_by: date


class PlanBody(Reasoned):
    instalments: list[Instalment] = Field(min_length=1, max_length=MAX_INSTALMENTS)


class Approved(Reasoned):
    operator: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._@:-]+$",
        description="supervisor tokens only: the operator who proposed it (the supervisor "
        "approves); defaults to the caller",
    )


class SettlementBody(Approved):
    amount: PositiveAmount = Field(description="what the borrower pays instead of the balance")
    pay_by: date


class DisputeResolveBody(Reasoned):
    outcome: Literal["for_borrower", "for_lender"]


class VisitBody(Reasoned):
    at: AwareDatetime
    collectors: list[str] = Field(min_length=2, max_length=6)


class VisitReportBody(Reasoned):
    outcome: Literal["met", "not_home", "refused", "promise"]


class WriteOffBody(Approved):
    pass


class CeaseBody(Reasoned):
    channel: CeaseChannel = "all"


class HardStopBody(Reasoned):
    kind: HardStopKind


class ThirdPartyOptOutBody(Reasoned):
    contact: int = Field(ge=0, le=4, description="index in the borrower's emergency_contacts")


class MigrateBody(Reasoned):
    to: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*@[0-9]+$",
        max_length=80,
        description="NAME@VERSION, loaded from the server's policy folders",
    )


# --- running an action ----------------------------------------------------------------------


async def _run(
    request: Request,
    case: str,
    update: str,
    build: Callable[[], BaseModel],
    on_rejected: Callable[[str], Problem | None] | None = None,
) -> CaseStatus:
    case_id = case_id_from_path(case)
    try:
        command = build()
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    try:
        return await case_client.act(services(request).client, case_id, update, command)
    except case_client.ActionRejected as exc:
        special = on_rejected(exc.reason) if on_rejected else None
        raise (special or case_problem(exc, case_id)) from None
    except case_client.CaseError as exc:
        raise case_problem(exc, case_id) from None


def _who(principal: Principal, body: Reasoned) -> dict[str, Any]:
    return {"operator": principal.name, **body.model_dump()}


def _approval(principal: Principal, body: Approved) -> dict[str, Any]:
    """operator and supervisor for a write-off or settlement."""
    fields = body.model_dump(exclude={"operator"})
    if principal.role is Role.supervisor:
        return {**fields, "operator": body.operator or principal.name, "supervisor": principal.name}
    if body.operator is not None and body.operator != principal.name:
        raise Problem(403, "forbidden", "operator: only a supervisor may name the operator")
    return {**fields, "operator": principal.name}


RESPONSES = problems(401, 403, 404, 409, 422)
ACT = Depends(auth.allow(auth.ACTIONS))


def _action(path: str, summary: str, **extra: Any) -> Callable[[Any], Any]:
    return router.post(
        f"/cases/{{case_id}}/{path}",
        summary=summary,
        response_model=CaseStatus,
        responses=RESPONSES,
        **extra,
    )


@_action("payments", "Report a payment (counted once per reference)")
async def record_payment(
    case_id: str,
    body: PaymentBody,
    request: Request,
    principal: Principal = Depends(auth.allow(auth.PAYMENTS)),
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "record_payment",
        lambda: Payment(amount=body.amount, reference=body.reference, source=principal.name),
    )


@_action("pause", "Stop all contact until resumed (or until `until`)")
async def pause_case(
    case_id: str, body: PauseBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "pause_case", lambda: Pause.model_validate(_who(principal, body))
    )


@_action("resume", "Restart contact on a paused case")
async def resume_case(
    case_id: str, body: Reasoned, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "resume_case", lambda: Resume.model_validate(_who(principal, body))
    )


@_action("promises", "Record a promise to pay an amount by a date")
async def promise_to_pay(
    case_id: str, body: PromiseBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "promise_to_pay",
        lambda: PromiseToPay.model_validate(_who(principal, body)),
    )


@_action("plans", "Agree a repayment plan (instalments with increasing due dates)")
async def agree_plan(
    case_id: str, body: PlanBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "agree_plan", lambda: RepaymentPlan.model_validate(_who(principal, body))
    )


def _needs_supervisor(principal: Principal) -> Callable[[str], Problem | None]:
    def check(reason: str) -> Problem | None:
        if principal.role is Role.operator and "past the approval threshold" in reason:
            return Problem(
                403,
                "forbidden",
                f"{reason}: a supervisor's token must make this settlement",
                title="Needs a supervisor",
            )
        return None

    return check


@_action("settlements", "Offer a settlement (past the approval threshold: supervisors only)")
async def offer_settlement(
    case_id: str, body: SettlementBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    fields = _approval(principal, body)
    return await _run(
        request,
        case_id,
        "offer_settlement",
        lambda: Settlement.model_validate(fields),
        on_rejected=_needs_supervisor(principal),
    )


@_action("disputes", "Open a dispute: collection holds until it is resolved")
async def open_dispute(
    case_id: str, body: Reasoned, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "open_dispute", lambda: DisputeOpen.model_validate(_who(principal, body))
    )


@_action("disputes/resolve", "Resolve the open dispute")
async def resolve_dispute(
    case_id: str, body: DisputeResolveBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "resolve_dispute",
        lambda: DisputeResolve.model_validate(_who(principal, body)),
    )


@_action("visits", "Book a field visit (two collectors at least)")
async def book_visit(
    case_id: str, body: VisitBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "book_visit", lambda: VisitBooking.model_validate(_who(principal, body))
    )


@_action("visits/report", "Report how the booked visit went")
async def report_visit(
    case_id: str, body: VisitReportBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "report_visit",
        lambda: VisitReport.model_validate(_who(principal, body)),
    )


@_action("escalate", "Move the case up to the next stage now")
async def escalate(
    case_id: str, body: Reasoned, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "escalate", lambda: OperatorAction.model_validate(_who(principal, body))
    )


@_action("deescalate", "Move the case back to the previous stage")
async def deescalate(
    case_id: str, body: Reasoned, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "deescalate",
        lambda: OperatorAction.model_validate(_who(principal, body)),
    )


@_action("close", "Close the case (no write-off)")
async def close_case(
    case_id: str, body: Reasoned, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "close_case",
        lambda: OperatorAction.model_validate(_who(principal, body)),
    )


@_action("write-off", "Write the balance off and close the case (supervisors)")
async def write_off(
    case_id: str,
    body: WriteOffBody,
    request: Request,
    principal: Principal = Depends(auth.allow(auth.APPROVALS)),
) -> CaseStatus:
    fields = _approval(principal, body)
    return await _run(request, case_id, "write_off", lambda: WriteOff.model_validate(fields))


@_action("cease", "The borrower asks to stop contact on a channel, or on all: permanent")
async def cease_contact(
    case_id: str, body: CeaseBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "cease_contact",
        lambda: CeaseContact.model_validate(_who(principal, body)),
    )


@_action("hard-stop", "Bankruptcy, death or legal representation: no contact any more")
async def hard_stop(
    case_id: str, body: HardStopBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request, case_id, "hard_stop", lambda: HardStop.model_validate(_who(principal, body))
    )


@_action("third-party-opt-out", "An emergency contact asks never to be contacted again")
async def third_party_opt_out(
    case_id: str, body: ThirdPartyOptOutBody, request: Request, principal: Principal = ACT
) -> CaseStatus:
    return await _run(
        request,
        case_id,
        "third_party_opt_out",
        lambda: ThirdPartyOptOut.model_validate(_who(principal, body)),
    )


@_action("policy", "Move the case to another policy version (supervisors)")
async def migrate_policy(
    case_id: str,
    body: MigrateBody,
    request: Request,
    principal: Principal = Depends(auth.allow(auth.APPROVALS)),
) -> CaseStatus:
    try:
        policy = load(body.to)
    except PolicyError as exc:
        raise Problem(422, "invalid", f"to: {exc}") from None
    fields = {"operator": principal.name, "reason": body.reason, "policy": policy}
    return await _run(request, case_id, "migrate_policy", lambda: MigratePolicy(**fields))
