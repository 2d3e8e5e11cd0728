"""The table of actions: one row per thing a caller can do to a live case.

A row names the workflow update (the method itself, never its name as a string), the
command it takes and the terms a caller sends, who may do it, and how it is called:
its CLI command and HTTP path. `dunning/cli/actions.py` builds the CLI commands from
it, `dunning/api/routes_actions.py` the API routes, the console its forms; a unit test
checks it against the workflow's updates, so an update cannot go missing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio.workflow import UpdateMethodMultiParam

from dunning.policies import PolicyError, load
from schemas.commands import (
    ApprovalTerms,
    Approve,
    CeaseContact,
    CeaseTerms,
    Close,
    Decline,
    Deescalate,
    DisputeOpen,
    DisputeResolve,
    DisputeResolveTerms,
    Escalate,
    HardStop,
    HardStopTerms,
    MigratePolicy,
    MigrateTerms,
    Note,
    NoteTerms,
    Pause,
    PauseTerms,
    Payment,
    PaymentTerms,
    PlanTerms,
    PromiseTerms,
    PromiseToPay,
    Reasoned,
    RepaymentPlan,
    Resume,
    Settlement,
    SettlementTerms,
    ThirdPartyOptOut,
    ThirdPartyOptOutTerms,
    VisitBooking,
    VisitBookingTerms,
    VisitReport,
    VisitReportTerms,
    WriteOff,
)
from schemas.roles import Role
from schemas.status import ActionResult
from workflows.loan_collection import LoanCollection

C = TypeVar("C", bound=BaseModel)
Update = UpdateMethodMultiParam[[LoanCollection, Any], ActionResult]

OPERATORS = frozenset({Role.operator, Role.supervisor})
SUPERVISORS = frozenset({Role.supervisor})
PAYERS = frozenset({Role.service, Role.operator, Role.supervisor})


class InvalidTerms(ValueError):
    """Terms that cannot become the command (a policy that does not load, ...)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class Cli:
    """How the CLI spells an action's terms, where it differs from `--field-name`."""

    positional: tuple[str, ...] = ()  # fields given as arguments after the case
    flags: dict[str, str] = field(default_factory=dict)  # field -> option, e.g. --by
    helps: dict[str, str] = field(default_factory=dict)  # field -> help text
    done: str = "done"  # what the CLI prints on success


@dataclass(frozen=True)
class Action:
    name: str  # the CLI command ("pause", "dispute resolve"); the console's form id
    path: str  # POST /cases/{case_id}/<path>
    summary: str  # one line: CLI help, OpenAPI summary, the console
    update: Update  # the workflow's update method, e.g. LoanCollection.pause_case
    command: type[BaseModel]
    terms: type[BaseModel]  # what a caller sends: the API body, the CLI options, a form
    roles: frozenset[Role]  # who may ask (the API and the console check it)
    acting: Literal["operator", "source"] = "operator"  # which field names who acts
    cli: Cli = field(default_factory=Cli)
    agreement: Literal["promise", "plan", "settlement"] | None = None  # a document

    def build(self, terms: BaseModel, who: str) -> BaseModel:
        """The command: the terms and who acts (the token's name, `--operator`)."""
        if self.command is MigratePolicy and isinstance(terms, MigrateTerms):
            try:
                policy = load(terms.to)
            except PolicyError as exc:
                raise InvalidTerms("to", str(exc)) from None
            return MigratePolicy(operator=who, reason=terms.reason, policy=policy)
        return self.command.model_validate({**terms.model_dump(), self.acting: who})

    @property
    def update_name(self) -> str:
        """The update's name in Temporal (for logs and docs; callers pass `update`)."""
        name: str | None = self.update._defn.name
        if name is None:  # pragma: no cover - every update of LoanCollection has a name
            raise TypeError(f"{self.name}: the update has no name")
        return name


ACTIONS: tuple[Action, ...] = (
    Action(
        name="pay",
        path="payments",
        summary="Report a payment (counted once per reference)",
        update=LoanCollection.record_payment,
        command=Payment,
        terms=PaymentTerms,
        roles=PAYERS,
        acting="source",
        cli=Cli(positional=("amount",), done="payment recorded"),
    ),
    Action(
        name="pause",
        path="pause",
        summary="Stop all contact until resumed (or until `until`)",
        update=LoanCollection.pause_case,
        command=Pause,
        terms=PauseTerms,
        roles=OPERATORS,
        cli=Cli(
            helps={"until": "resume by itself at this ISO 8601 time (with offset)"},
            done="paused",
        ),
    ),
    Action(
        name="resume",
        path="resume",
        summary="Restart contact on a paused case",
        update=LoanCollection.resume_case,
        command=Resume,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="resumed"),
    ),
    Action(
        name="promise",
        path="promises",
        summary="Record a promise to pay an amount by a date",
        update=LoanCollection.promise_to_pay,
        command=PromiseToPay,
        terms=PromiseTerms,
        roles=OPERATORS,
        agreement="promise",
        cli=Cli(positional=("amount",), flags={"pay_by": "--by"}, done="promise recorded"),
    ),
    Action(
        name="plan",
        path="plans",
        summary="Agree a repayment plan (instalments with increasing due dates)",
        update=LoanCollection.agree_plan,
        command=RepaymentPlan,
        terms=PlanTerms,
        roles=OPERATORS,
        agreement="plan",
        cli=Cli(
            flags={"instalments": "--instalment"},
            helps={"instalments": "AMOUNT@YYYY-MM-DD; repeat for each instalment, in order"},
            done="plan agreed",
        ),
    ),
    Action(
        name="settle",
        path="settlements",
        summary="Offer a settlement; a waiver past the policy's share waits for approval",
        update=LoanCollection.offer_settlement,
        command=Settlement,
        terms=SettlementTerms,
        roles=OPERATORS,
        agreement="settlement",
        cli=Cli(positional=("amount",), flags={"pay_by": "--by"}, done="settlement offered"),
    ),
    Action(
        name="dispute open",
        path="disputes",
        summary="Open a dispute: collection holds until it is resolved",
        update=LoanCollection.open_dispute,
        command=DisputeOpen,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="dispute opened"),
    ),
    Action(
        name="dispute resolve",
        path="disputes/resolve",
        summary="Resolve the open dispute (for the borrower: waits for approval)",
        update=LoanCollection.resolve_dispute,
        command=DisputeResolve,
        terms=DisputeResolveTerms,
        roles=OPERATORS,
        cli=Cli(done="dispute resolved"),
    ),
    Action(
        name="visit book",
        path="visits",
        summary="Book a field visit agreed with the borrower (two collectors at least)",
        update=LoanCollection.book_visit,
        command=VisitBooking,
        terms=VisitBookingTerms,
        roles=OPERATORS,
        cli=Cli(
            flags={"collectors": "--collector"},
            helps={
                "at": "the agreed appointment, ISO 8601 with offset",
                "collectors": "collector id; at least two, repeat the option",
            },
            done="visit booked",
        ),
    ),
    Action(
        name="visit report",
        path="visits/report",
        summary="Report how the booked visit went",
        update=LoanCollection.report_visit,
        command=VisitReport,
        terms=VisitReportTerms,
        roles=OPERATORS,
        cli=Cli(done="visit reported"),
    ),
    Action(
        name="escalate",
        path="escalate",
        summary="Move the case up to the next stage now",
        update=LoanCollection.escalate,
        command=Escalate,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="escalated"),
    ),
    Action(
        name="deescalate",
        path="deescalate",
        summary="Move the case back to the previous stage",
        update=LoanCollection.deescalate,
        command=Deescalate,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="de-escalated"),
    ),
    Action(
        name="close",
        path="close",
        summary="Close the case (no write-off)",
        update=LoanCollection.close_case,
        command=Close,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="closed"),
    ),
    Action(
        name="write-off",
        path="write-off",
        summary="Request a write-off of the balance; another principal approves it",
        update=LoanCollection.write_off,
        command=WriteOff,
        terms=Reasoned,
        roles=OPERATORS,
        cli=Cli(done="write-off requested"),
    ),
    Action(
        name="approve",
        path="approve",
        summary="Approve a pending request (a supervisor other than who asked)",
        update=LoanCollection.approve,
        command=Approve,
        terms=ApprovalTerms,
        roles=SUPERVISORS,
        cli=Cli(helps={"request": "the request's number, as `status` lists it"}, done="approved"),
    ),
    Action(
        name="decline",
        path="decline",
        summary="Decline a pending request",
        update=LoanCollection.decline,
        command=Decline,
        terms=ApprovalTerms,
        roles=SUPERVISORS,
        cli=Cli(helps={"request": "the request's number, as `status` lists it"}, done="declined"),
    ),
    Action(
        name="cease",
        path="cease",
        summary="The borrower asks to stop contact on a channel, or on all: permanent",
        update=LoanCollection.cease_contact,
        command=CeaseContact,
        terms=CeaseTerms,
        roles=OPERATORS,
        cli=Cli(done="contact ceased"),
    ),
    Action(
        name="hard-stop",
        path="hard-stop",
        summary="Bankruptcy, death or legal representation: no contact any more",
        update=LoanCollection.hard_stop,
        command=HardStop,
        terms=HardStopTerms,
        roles=OPERATORS,
        cli=Cli(done="hard stop recorded"),
    ),
    Action(
        name="third-party-opt-out",
        path="third-party-opt-out",
        summary="An emergency contact asks never to be contacted again",
        update=LoanCollection.third_party_opt_out,
        command=ThirdPartyOptOut,
        terms=ThirdPartyOptOutTerms,
        roles=OPERATORS,
        cli=Cli(done="third party opted out"),
    ),
    Action(
        name="note",
        path="notes",
        summary="Add a note to the case file (what was said or seen)",
        update=LoanCollection.add_note,
        command=Note,
        terms=NoteTerms,
        roles=OPERATORS,
        cli=Cli(helps={"reason": "the note"}, done="note added"),
    ),
    Action(
        name="policy migrate",
        path="policy",
        summary="Move the case to another policy version",
        update=LoanCollection.migrate_policy,
        command=MigratePolicy,
        terms=MigrateTerms,
        roles=SUPERVISORS,
        cli=Cli(done="policy migrated"),
    ),
)

BY_NAME: dict[str, Action] = {action.name: action for action in ACTIONS}
assert len(BY_NAME) == len(ACTIONS), "action names are unique"
assert len({a.path for a in ACTIONS}) == len(ACTIONS), "action paths are unique"
