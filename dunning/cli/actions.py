"""Operator actions on a live case: pause, pay, promise, plan, settle, dispute, visit, ...

Each command builds the command model (bad input exits with status 2 and names the
field, before anything is sent), runs the case's workflow update, and shows the
status the case answers with. The workflow's validator may refuse the action (a
promise on a paused case, a write-off without a supervisor's ...): that, an unknown
case and a closed case exit with status 1. With `--json` the answer is the status as
JSON, or `{"rejected": "<reason>"}` / `{"invalid": "<field: problem>"}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError

from dunning import case_client
from dunning.cli.common import console, fail, field_errors, run, settings
from dunning.temporal_client import connect
from schemas.commands import (
    CeaseContact,
    DisputeOpen,
    DisputeResolve,
    HardStop,
    OperatorAction,
    Pause,
    Payment,
    PromiseToPay,
    RepaymentPlan,
    Resume,
    Settlement,
    ThirdPartyOptOut,
    VisitBooking,
    VisitReport,
    WriteOff,
)
from schemas.status import CaseStatus

CASE = typer.Argument(..., help="case id (case-<loan id>) or loan id")
AMOUNT = typer.Argument(..., help="amount in the loan's currency, e.g. 100.00")
JSON = typer.Option(False, "--json", help="print the case's status (or the refusal) as JSON")


def _operator() -> Any:
    return typer.Option(..., help="operator id")


def _reason(what: str) -> Any:
    return typer.Option(..., help=what)


class InvalidInput(ValueError):
    """Input that cannot become a command; the message names the field."""


def _amount(value: str, field: str = "amount") -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"{field}: not a number") from None


def _refuse(message: str, as_json: bool, *, code: int, key: str, label: str = "") -> NoReturn:
    if as_json:
        print(json.dumps({key: message}, ensure_ascii=False))
        raise typer.Exit(code)
    fail(label + message, code)


def perform(
    case: str, update: str, build: Callable[[], BaseModel], as_json: bool, done: str
) -> CaseStatus:
    """Validate the command, run the update, print the answer; exits on any refusal."""
    try:
        command = build()
    except ValidationError as exc:
        _refuse(field_errors(exc), as_json, code=2, key="invalid")
    except InvalidInput as exc:
        _refuse(str(exc), as_json, code=2, key="invalid")
    current = settings()
    case_id = case_client.normalise_case_id(case)

    async def go() -> CaseStatus:
        return await case_client.act(await connect(current), case_id, update, command)

    try:
        result = run(go())
    except case_client.ActionRejected as exc:
        _refuse(exc.reason, as_json, code=1, key="rejected", label="rejected: ")
    except case_client.CaseError as exc:
        _refuse(str(exc), as_json, code=1, key="rejected")
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        from dunning.cli.render import status_panel

        console.print(f"[green]{done}[/]: {case_id}")
        console.print(status_panel(result))
    return result


def register(app: typer.Typer) -> None:
    """Add the action commands to the `dunning` app."""
    dispute_app = typer.Typer(help="Open or resolve a dispute on a case.", no_args_is_help=True)
    visit_app = typer.Typer(help="Book a field visit or report how it went.", no_args_is_help=True)
    app.add_typer(dispute_app, name="dispute")
    app.add_typer(visit_app, name="visit")

    @app.command()
    def pause(
        case: str = CASE,
        until: str | None = typer.Option(
            None, help="resume by itself at this ISO 8601 time (with offset); open-ended if omitted"
        ),
        reason: str = _reason("why collection stops"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Stop all contact on a case until it is resumed (or until --until)."""
        perform(
            case,
            "pause_case",
            lambda: Pause.model_validate({"operator": operator, "reason": reason, "until": until}),
            as_json,
            "paused",
        )

    @app.command()
    def resume(
        case: str = CASE,
        reason: str = _reason("why collection restarts"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Restart contact on a paused case."""
        perform(
            case,
            "resume_case",
            lambda: Resume(operator=operator, reason=reason),
            as_json,
            "resumed",
        )

    @app.command()
    def cease(
        case: str = CASE,
        channel: str = typer.Option("all", help="sms, call or all"),
        reason: str = _reason("the borrower's request"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """The borrower asks not to be contacted on a channel (or at all): permanent."""
        perform(
            case,
            "cease_contact",
            lambda: CeaseContact.model_validate(
                {"operator": operator, "reason": reason, "channel": channel}
            ),
            as_json,
            "contact ceased",
        )

    @app.command("third-party-opt-out")
    def third_party_opt_out(
        case: str = CASE,
        contact: int = typer.Option(
            ..., help="index of the emergency contact in the case (0 = the first)"
        ),
        reason: str = _reason("how they asked"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """An emergency contact asks never to be contacted again: permanent."""
        perform(
            case,
            "third_party_opt_out",
            lambda: ThirdPartyOptOut.model_validate(
                {"operator": operator, "reason": reason, "contact": contact}
            ),
            as_json,
            "third party opted out",
        )

    @app.command("hard-stop")
    def hard_stop(
        case: str = CASE,
        kind: str = typer.Option(..., help="bankruptcy, deceased or represented"),
        reason: str = _reason("the evidence"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """No collection contact any more (a resume does not lift it)."""
        perform(
            case,
            "hard_stop",
            lambda: HardStop.model_validate({"operator": operator, "reason": reason, "kind": kind}),
            as_json,
            "hard stop recorded",
        )

    @app.command()
    def pay(
        case: str = CASE,
        amount: str = AMOUNT,
        reference: str = typer.Option(
            ..., help="payment reference; the same reference counts once"
        ),
        as_json: bool = JSON,
    ) -> None:
        """Report a payment (partial or full)."""
        perform(
            case,
            "record_payment",
            lambda: Payment(amount=_amount(amount), reference=reference, source="cli"),
            as_json,
            "payment recorded",
        )

    @app.command()
    def promise(
        case: str = CASE,
        amount: str = AMOUNT,
        by: str = typer.Option(..., "--by", help="the borrower's local date, YYYY-MM-DD"),
        reason: str = _reason("what was said"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Record the borrower's promise to pay an amount by a date (contact holds until then)."""
        perform(
            case,
            "promise_to_pay",
            lambda: PromiseToPay.model_validate(
                {"operator": operator, "reason": reason, "amount": _amount(amount), "pay_by": by}
            ),
            as_json,
            "promise recorded",
        )

    @app.command()
    def plan(
        case: str = CASE,
        instalment: list[str] = typer.Option(
            ..., "--instalment", help="AMOUNT@YYYY-MM-DD; repeat for each instalment, in order"
        ),
        reason: str = _reason("why a plan"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Agree a repayment plan: instalments with increasing due dates."""

        def build() -> RepaymentPlan:
            instalments = []
            for index, text in enumerate(instalment):
                amount, at, due = text.partition("@")
                if not at:
                    raise InvalidInput(f"instalments.{index}: expected AMOUNT@YYYY-MM-DD")
                instalments.append(
                    {"amount": _amount(amount, f"instalments.{index}.amount"), "due": due}
                )
            return RepaymentPlan.model_validate(
                {"operator": operator, "reason": reason, "instalments": instalments}
            )

        perform(case, "agree_plan", build, as_json, "plan agreed")

    @app.command()
    def settle(
        case: str = CASE,
        amount: str = AMOUNT,
        by: str = typer.Option(..., "--by", help="the borrower's local date, YYYY-MM-DD"),
        supervisor: str | None = typer.Option(
            None, help="approving supervisor, when the waiver needs one"
        ),
        reason: str = _reason("why a settlement"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Offer a settlement: the balance is closed if AMOUNT is paid by the date."""
        perform(
            case,
            "offer_settlement",
            lambda: Settlement.model_validate(
                {
                    "operator": operator,
                    "reason": reason,
                    "amount": _amount(amount),
                    "pay_by": by,
                    "supervisor": supervisor,
                }
            ),
            as_json,
            "settlement offered",
        )

    @dispute_app.command("open")
    def dispute_open(
        case: str = CASE,
        reason: str = _reason("what the borrower disputes"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """The borrower disputes the debt: collection holds until it is resolved."""
        perform(
            case,
            "open_dispute",
            lambda: DisputeOpen(operator=operator, reason=reason),
            as_json,
            "dispute opened",
        )

    @dispute_app.command("resolve")
    def dispute_resolve(
        case: str = CASE,
        outcome: str = typer.Option(..., help="for_borrower or for_lender"),
        reason: str = _reason("how it was resolved"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Resolve the open dispute."""
        perform(
            case,
            "resolve_dispute",
            lambda: DisputeResolve.model_validate(
                {"operator": operator, "reason": reason, "outcome": outcome}
            ),
            as_json,
            "dispute resolved",
        )

    @visit_app.command("book")
    def visit_book(
        case: str = CASE,
        at: str = typer.Option(..., help="the agreed appointment, ISO 8601 with offset"),
        collector: list[str] = typer.Option(
            ..., "--collector", help="collector id; at least two, repeat the option"
        ),
        reason: str = _reason("why a visit"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Book a field visit agreed with the borrower (two collectors at least)."""
        perform(
            case,
            "book_visit",
            lambda: VisitBooking.model_validate(
                {"operator": operator, "reason": reason, "at": at, "collectors": collector}
            ),
            as_json,
            "visit booked",
        )

    @visit_app.command("report")
    def visit_report(
        case: str = CASE,
        outcome: str = typer.Option(..., help="met, not_home, refused or promise"),
        reason: str = _reason("what happened"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Report how the booked visit went."""
        perform(
            case,
            "report_visit",
            lambda: VisitReport.model_validate(
                {"operator": operator, "reason": reason, "outcome": outcome}
            ),
            as_json,
            "visit reported",
        )

    def _simple(name: str, update: str, done: str, doc: str, why: str) -> None:
        def command(
            case: str = CASE,
            reason: str = _reason(why),
            operator: str = _operator(),
            as_json: bool = JSON,
        ) -> None:
            perform(
                case,
                update,
                lambda: OperatorAction(operator=operator, reason=reason),
                as_json,
                done,
            )

        command.__doc__ = doc
        app.command(name)(command)

    _simple(
        "escalate",
        "escalate",
        "escalated",
        "Move the case up to the next stage now.",
        "why escalate",
    )
    _simple(
        "deescalate",
        "deescalate",
        "de-escalated",
        "Move the case back to the previous stage.",
        "why de-escalate",
    )
    _simple("close", "close_case", "closed", "Close the case (no write-off).", "why close")

    @app.command("write-off")
    def write_off(
        case: str = CASE,
        supervisor: str = typer.Option(..., help="approving supervisor id"),
        reason: str = _reason("why the balance is written off"),
        operator: str = _operator(),
        as_json: bool = JSON,
    ) -> None:
        """Write the balance off and close the case (a supervisor approves)."""
        perform(
            case,
            "write_off",
            lambda: WriteOff(operator=operator, reason=reason, supervisor=supervisor),
            as_json,
            "written off",
        )
