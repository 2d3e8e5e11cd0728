"""The channels a policy can use: one row per channel, everything about it in one place.

Everything else reads this table: the policy checks (`schemas/policy.py`), the guard
(`workflows/compliance.py`), the pure provider-request builder
(`workflows/requests.py`), the activities (`activities/outbound.py`), the webhook
provider and the worker's settings. Adding a channel is a row here (and, for a new
kind of address, template or document, what that kind means); the activities, the
providers, the guard and the worker are driven by the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Channel = Literal[
    "sms",
    "call",
    "field_visit",
    "legal_handoff",
    "third_party_sms",
    "email",
    "letter",
    "agent_call",
]
# What an attempt is addressed to: the borrower's current phone (the first not reported
# invalid), an emergency contact's phone, the borrower's id (partners who look the
# borrower up themselves), the borrower's e-mail address, or their postal address.
Address = Literal["phone", "third_party_phone", "borrower_id", "email", "postal_address"]
# Which partner carries it: one webhook URL setting per partner (`DUNNING_WEBHOOK_<X>_URL`).
# `email` is delivered over SMTP (`activities/providers/smtp.py`), not a webhook.
# `mail` is the print-and-mail house that prints letters and posts them. `collectors` are
# people: the team's work queue in PostgreSQL (`activities/providers/call_queue.py`).
Partner = Literal["sms", "dialer", "field", "legal", "email", "mail", "collectors"]
# Which variables its template is given (see TEMPLATE_VARIABLES).
TemplateKind = Literal["message", "third_party", "letter"]
# What a rendered template is handed over as: the text itself, or a document made of
# it (`activities/outbound.py` has a renderer per kind); the provider is given both.
Rendering = Literal["text", "pdf"]
# The event a performed attempt becomes.
AttemptEvent = Literal["contact_attempted", "field_visit_scheduled", "handed_to_legal"]

# The variables each kind of template is given, and nothing else: `policy check`
# refuses a template that uses another, and `workflows/requests.py` supplies exactly
# these. A message to an emergency contact must not disclose the debt (docs/domain.md
# rules 3 and 8): its template gets the borrower's name only.
TEMPLATE_VARIABLES: dict[TemplateKind, frozenset[str]] = {
    "message": frozenset({"name", "loan_id", "amount", "currency", "days_past_due"}),
    "third_party": frozenset({"borrower_name"}),
    # A formal letter: addressed by post, with the debt itemised (Reg F §1006.34's
    # validation notice; the notice before a legal handoff). `date` is the letter's
    # (borrower-local), `respond_by` 35 days later: the 30-day validation period from
    # a receipt presumed 5 days after mailing.
    "letter": frozenset(
        {
            "name",
            "address",
            "loan_id",
            "currency",
            "principal",
            "interest",
            "fees",
            "penalty",
            "amount",
            "days_past_due",
            "due_date",
            "date",
            "respond_by",
        }
    ),
}


@dataclass(frozen=True)
class ChannelSpec:
    name: Channel
    activity: str  # the activity that performs an attempt
    partner: Partner
    address: Address
    template: TemplateKind | None  # None: no message text (a call, a handoff)
    guarded: bool  # the compliance guard decides every attempt (window, caps, stops)
    capped: bool  # counts toward the profile's call caps (schemas/compliance.py)
    once: bool  # happens at most once per stage (no `every_days`)
    ceased_by: frozenset[str]  # cease-contact channels that stop it ("all" included)
    default_outcome: str  # what a partner's 2xx without an `outcome` means
    attempt_event: AttemptEvent
    personal: tuple[str, ...]  # request fields holding personal data (never logged)
    deadline: bool  # an attempt ends with the borrower's contact window
    # The line every template of the channel must carry, per language (docs/domain.md
    # rule 5): `policy check` refuses a template without it. None: no such line.
    opt_out: dict[str, str] | None = None
    rendering: Rendering = "text"
    # A person performs it: the attempt is a task in the team's queue (the request
    # carries the task's facts, `schemas.activity_io.CallTaskFacts`), it lasts until the
    # collector completes it or its deadline (no per-try timeout), and a withdrawal
    # takes it out of the queue (docs/console.md, "The collectors' queue").
    person: bool = False


@dataclass(frozen=True)
class BorrowerAddress:
    """An address that is a field of the borrower (`schemas.case.Borrower`), optional or
    not: a contact due while the borrower has none is skipped under `missing_rule`."""

    field: str
    missing_rule: str
    missing_detail: str


# The addresses read straight off the borrower; the phones are the state's (the first
# not reported invalid, an emergency contact who has not opted out).
ON_BORROWER: dict[Address, BorrowerAddress] = {
    "borrower_id": BorrowerAddress("id", "no_borrower_id", "the case names no borrower id"),
    "email": BorrowerAddress("email", "no_email", "the borrower gave no e-mail address"),
    "postal_address": BorrowerAddress(
        "address", "no_postal_address", "the borrower gave no postal address"
    ),
}

SMS_OPT_OUT = {"en": "Reply STOP to opt out", "zh-CN": "回复TD退订"}
# Every e-mail also carries a List-Unsubscribe header (activities/providers/smtp.py).
EMAIL_OPT_OUT = {"en": "To unsubscribe from these e-mails", "zh-CN": "退订此类邮件"}


ANY_CEASE = frozenset({"sms", "call", "email", "letter", "all"})

CHANNELS: dict[Channel, ChannelSpec] = {
    spec.name: spec
    for spec in (
        ChannelSpec(
            name="sms",
            activity="send_sms",
            partner="sms",
            address="phone",
            template="message",
            guarded=True,
            capped=False,
            once=False,
            ceased_by=frozenset({"sms", "all"}),
            default_outcome="delivered",
            attempt_event="contact_attempted",
            personal=("recipient", "body"),
            deadline=True,
            opt_out=SMS_OPT_OUT,
        ),
        ChannelSpec(
            name="call",
            activity="place_call",
            partner="dialer",
            address="phone",
            template=None,
            guarded=True,
            capped=True,
            once=False,
            ceased_by=frozenset({"call", "all"}),
            default_outcome="unknown",  # a dialer must say how the call went
            attempt_event="contact_attempted",
            personal=("recipient",),
            deadline=True,
        ),
        ChannelSpec(
            name="third_party_sms",
            activity="send_sms",
            partner="sms",
            address="third_party_phone",
            template="third_party",
            guarded=True,
            capped=False,
            once=False,
            ceased_by=frozenset({"all"}),
            default_outcome="delivered",
            attempt_event="contact_attempted",
            personal=("recipient", "body"),
            deadline=True,
            opt_out=SMS_OPT_OUT,
        ),
        ChannelSpec(
            name="field_visit",
            activity="schedule_field_visit",
            partner="field",
            address="borrower_id",
            template=None,
            guarded=True,
            capped=False,
            once=True,
            ceased_by=ANY_CEASE,  # a visit is contact on every channel at once
            default_outcome="requested",
            attempt_event="field_visit_scheduled",
            personal=(),
            deadline=True,
        ),
        ChannelSpec(
            name="legal_handoff",
            activity="hand_to_legal",
            partner="legal",
            address="borrower_id",
            template=None,
            guarded=False,  # not contact with the borrower: escalation goes on
            capped=False,
            once=True,
            ceased_by=frozenset(),
            default_outcome="accepted",
            attempt_event="handed_to_legal",
            personal=(),
            deadline=False,
        ),
        ChannelSpec(
            name="email",
            activity="send_email",
            partner="email",
            address="email",
            template="message",
            guarded=True,  # the window, hard stops, ceases and holds apply
            capped=False,  # the profiles cap calls only (docs/providers.md, E-mail)
            once=False,
            ceased_by=frozenset({"email", "all"}),
            default_outcome="delivered",  # the SMTP server accepted it for delivery
            attempt_event="contact_attempted",
            personal=("recipient", "body"),
            deadline=True,
            opt_out=EMAIL_OPT_OUT,
        ),
        ChannelSpec(
            name="letter",
            activity="send_letter",
            partner="mail",
            address="postal_address",
            template="letter",
            guarded=True,  # contact: the window, hard stops, ceases and holds apply
            capped=False,
            once=True,  # a notice is sent once per stage (at_days for more)
            ceased_by=frozenset({"letter", "all"}),
            default_outcome="accepted",  # the mail house took it for printing and posting
            attempt_event="contact_attempted",
            personal=("recipient", "body", "document"),
            deadline=True,
            rendering="pdf",
        ),
        ChannelSpec(
            name="agent_call",
            activity="queue_agent_call",
            partner="collectors",
            address="phone",
            template=None,
            guarded=True,  # checked at decision, re-checked when a collector claims it
            capped=True,  # a collector's call counts toward the call caps like a dialer's
            once=False,
            ceased_by=frozenset({"call", "all"}),
            default_outcome="unknown",  # a collector completes it with an outcome
            attempt_event="contact_attempted",
            personal=("recipient",),  # never stored with the task (the case holds it)
            deadline=True,  # a task expires at the end of the borrower's contact window
            person=True,
        ),
    )
}

GUARDED: frozenset[Channel] = frozenset(c for c, spec in CHANNELS.items() if spec.guarded)
TEMPLATED: frozenset[Channel] = frozenset(
    c for c, spec in CHANNELS.items() if spec.template is not None
)
ACTIVITIES: frozenset[str] = frozenset(spec.activity for spec in CHANNELS.values())
PARTNERS: frozenset[Partner] = frozenset(get_args(Partner))

assert set(CHANNELS) == set(get_args(Channel)), "every channel has its row"
assert {s.partner for s in CHANNELS.values()} == PARTNERS, "every partner carries a channel"
assert all(
    len({CHANNELS[c].partner for c in CHANNELS if CHANNELS[c].activity == a}) == 1
    for a in ACTIVITIES
), "an activity hands its attempts to one partner"


def partner_queue(task_queue: str, partner: Partner) -> str:
    """The task queue a partner's attempts run on, beside the cases' `task_queue`: one
    queue per partner, so a partner's limits (messages per second, lines) are its
    queue's and pace nothing else (docs/providers.md, "Pacing"). The workflow routes
    an attempt here and the worker polls it: this is the one place the name is made."""
    return f"{task_queue}.{partner}"


def spec(channel: str) -> ChannelSpec:
    """The row of `channel` (a `Channel`; KeyError for anything else)."""
    return CHANNELS[channel]  # type: ignore[index]
