"""The case input: who owes what, as a backend service reports it.

Personal data (name, phone numbers, e-mail and postal address) is validated here and must never be
echoed back: `hide_input_in_errors` keeps rejected values out of error messages.
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import email_validator
import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.money import Amount, CurrencyCode, check_minor_units
from schemas.text import HumanText

Language = Literal["en", "zh-CN"]
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]

STRICT = ConfigDict(
    extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True, frozen=True
)


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Asia/Shanghai") from exc
    return name


def _check_country(code: str) -> str:
    code = code.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as CN or US")
    return code


def _check_email(address: str) -> str:
    """The normalised address (domain lower-cased, IDNA), syntax only: no DNS look-up
    (validation runs again on replay, offline). The problem is named, never the value."""
    try:
        checked = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError("must be an e-mail address such as name@example.com") from exc
    return str(checked.normalized)


EmailAddress = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_check_email)]
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_check_timezone)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_check_country)]


# The borrower's fields that hold personal data, and how they are masked where a case
# is shown to people who need not see them (`dunning audit history`): a name keeps its
# initial, phones their last two digits, anything else is replaced whole.
Masking = Literal["name", "phone", "redact"]
PERSONAL_FIELDS: dict[str, Masking] = {
    "name": "name",
    "phones": "phone",
    "address": "redact",
    "email": "redact",
}


Relation = Literal[
    "spouse", "parent", "child", "sibling", "relative", "friend", "colleague", "other"
]


class EmergencyContact(BaseModel):
    """Someone the borrower named to reach them. Contacted only when the borrower is
    unreachable, never told about the debt, and never again once they opt out."""

    model_config = STRICT

    name: HumanText = Field(min_length=1, max_length=200)
    phone: str = Field(
        min_length=1, max_length=40, description="international form, or national of `country`"
    )
    relation: Relation = "other"


class Borrower(BaseModel):
    """The person who owes the debt."""

    model_config = STRICT

    id: Identifier
    name: HumanText = Field(min_length=1, max_length=200)
    phones: list[str] = Field(
        min_length=1,
        max_length=10,
        description="phone numbers, in international form or national form of `country`; "
        "stored normalised to E.164; the first is the primary",
    )
    country: CountryCode | None = Field(
        default=None, description="ISO 3166-1 alpha-2; lets phones be given in national form"
    )
    timezone: TimeZoneName = Field(description="IANA time zone of the borrower, e.g. Asia/Shanghai")
    language: Language = "zh-CN"
    address: HumanText | None = Field(default=None, max_length=500)
    email: EmailAddress | None = Field(
        default=None,
        description="the borrower's e-mail address, for the `email` channel (syntax checked "
        "with email-validator, no DNS look-up; stored normalised); none: e-mails are skipped",
        # Left out when there is none: a case without one keeps its earlier shape.
        exclude_if=lambda value: value is None,
    )
    emergency_contacts: list[EmergencyContact] = Field(
        default_factory=list,
        max_length=5,
        description="third parties to ask the borrower to call back, only once the borrower "
        "is unreachable; never told about the debt",
    )

    @model_validator(mode="after")
    def _normalise_phones(self) -> Borrower:
        normalised = [self._e164(raw, f"phones[{i}]") for i, raw in enumerate(self.phones)]
        for index, e164 in enumerate(normalised):
            if e164 in normalised[:index]:
                raise ValueError(f"phones[{index}]: the same number appears twice")
        object.__setattr__(self, "phones", normalised)
        contacts: list[EmergencyContact] = []
        for index, contact in enumerate(self.emergency_contacts):
            where = f"emergency_contacts[{index}].phone"
            e164 = self._e164(contact.phone, where)
            if e164 in normalised or e164 in [c.phone for c in contacts]:
                raise ValueError(f"{where}: the same number appears twice")
            contacts.append(contact.model_copy(update={"phone": e164}))
        object.__setattr__(self, "emergency_contacts", contacts)
        return self

    def _e164(self, raw: str, where: str) -> str:
        try:
            parsed = phonenumbers.parse(raw, self.country)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"{where}: not a phone number") from exc
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError(f"{where}: not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# How far a loan's days past due may be from the days since its due date, at opening.
DPD_TOLERANCE_DAYS = 3


class Loan(BaseModel):
    """The overdue loan; amounts are what is outstanding today, split by kind."""

    model_config = STRICT

    id: Identifier
    currency: CurrencyCode
    principal: Amount
    interest: Amount = Decimal(0)
    fees: Amount = Decimal(0)
    penalty: Amount = Decimal(0)
    due_date: date = Field(
        description="the oldest unpaid due date; at opening it must agree with "
        f"`days_past_due` within {DPD_TOLERANCE_DAYS} days, in the borrower's time zone"
    )
    days_past_due: int = Field(
        ge=1,
        le=3650,
        description="days since `due_date` as the lender counts them; escalation starts here",
    )
    product: HumanText = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _check_amounts(self) -> Loan:
        for field in ("principal", "interest", "fees", "penalty"):
            try:
                check_minor_units(getattr(self, field), self.currency)
            except ValueError as exc:
                raise ValueError(f"{field}: {exc}") from exc
        if self.outstanding <= 0:
            raise ValueError("outstanding balance must be above zero to open a case")
        return self

    @property
    def outstanding(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalty


def dates_problem(loan: Loan, today: date) -> tuple[str, str] | None:
    """(field, problem) when `loan.due_date` and `loan.days_past_due` disagree on
    `today`, the borrower's local date at opening; None when they agree.

    A pure function of the date it is given, and deliberately not a validator of
    `Loan`: a `CaseOpened` event carries the loan as it was opened and is parsed again
    on every replay, years later, when "today" is long past. The starter and the API
    apply it when a case opens (`starter.opening_problems`)."""
    if loan.due_date > today:
        return (
            "loan.due_date",
            "is after today in the borrower's time zone: a loan past due fell due before",
        )
    if abs((today - loan.due_date).days - loan.days_past_due) > DPD_TOLERANCE_DAYS:
        return (
            "loan.days_past_due",
            f"does not agree with loan.due_date (more than {DPD_TOLERANCE_DAYS} days from the "
            "days since it, in the borrower's time zone)",
        )
    return None


class CaseInput(BaseModel):
    """What a backend service sends to open a case (the JSON Schema of `dunning schema case`)."""

    model_config = STRICT

    borrower: Borrower
    loan: Loan
    policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=r"^[a-z0-9][a-z0-9_-]*(@[0-9]+)?$",
        description="escalation policy NAME or NAME@VERSION, pinned when the case opens; "
        "omitted: the active strategy chooses (DUNNING_STRATEGY), or `default` when no "
        "strategy is configured",
    )
    segment: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="the backend's own segment for the case (a risk grade, a portfolio), "
        "which strategy rules may route by; never personal data",
    )
    risk_score: int | None = Field(
        default=None, ge=0, le=1000, description="the backend's risk score, 0..1000"
    )

    @property
    def case_id(self) -> str:
        return case_id_for(self.loan.id)


def case_id_for(loan_id: str) -> str:
    """The case id, which is also the Temporal workflow id: one case per loan."""
    return f"case-{loan_id}"
