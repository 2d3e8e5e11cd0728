"""Compliance profiles: the contact rules of a jurisdiction, as data.

A policy names its profile (`compliance = "cn"`, the default, or `"us"`); the guard in
`workflows/compliance.py` enforces it before every contact attempt. The numbers and
their sources are those of docs/domain.md ("Rules the engine must enforce").
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.policy import ContactWindow

ProfileName = Literal["cn", "us"]

# Call outcomes (ContactAttempted.outcome, as the provider reports them) that mean a
# conversation with the borrower took place. Anything else (no_answer, busy,
# voicemail, wrong_number, failed, ...) is an unanswered dial.
CONNECTED_OUTCOMES: frozenset[str] = frozenset(
    {"answered", "connected", "promise", "refused", "dispute", "callback"}
)

# Outcomes that say the number itself is wrong (a call or an SMS): the borrower cannot
# be reached on it. Three consecutive unanswered calls make the borrower unreachable too
# (docs/domain.md rule 3); only then may emergency contacts be messaged.
INVALID_NUMBER_OUTCOMES: frozenset[str] = frozenset(
    {"wrong_number", "invalid_number", "undeliverable", "number_not_in_service"}
)
UNREACHABLE_AFTER_FAILED_CALLS = 3


class ComplianceProfile(BaseModel):
    """One jurisdiction's rules. A cap of None does not apply in that jurisdiction.

    Days are the borrower's local calendar days; "7 days" are 7 consecutive local days
    counting today (Reg F §1006.14(b)(2): the day of the conversation is day one).
    Caps on calls count across all the borrower's numbers, except the per-number one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ProfileName
    window: ContactWindow = Field(description="borrower-local hours in which contact may happen")
    holidays: str | None = Field(
        description="country (ISO 3166 code for the `holidays` package) whose public "
        "holidays are quiet days; None: no quiet days"
    )
    connected_calls_per_day: int | None = Field(default=None, ge=1)
    unanswered_dials_per_number_per_day: int | None = Field(default=None, ge=1)
    call_attempts_per_7_days: int | None = Field(default=None, ge=1)
    no_call_days_after_conversation: int | None = Field(default=None, ge=1)


PROFILES: dict[str, ComplianceProfile] = {
    # China. Window 08:00-22:00 (GB/T 45251—2025; CBA 2026 guideline); at most 3
    # connected voice conversations per debtor per day (GB/T 45251—2025) and at most 6
    # unanswered dials per number per day (CBA 2026), per docs/domain.md rule 2.
    "cn": ComplianceProfile(
        name="cn",
        window=ContactWindow(start=time(8), end=time(22)),
        holidays="CN",
        connected_calls_per_day=3,
        unanswered_dials_per_number_per_day=6,
    ),
    # United States. Window 08:00-21:00 (Reg F §1006.6); at most 7 call attempts per
    # rolling 7 days per debt and no call within 7 days after a conversation (Reg F
    # §1006.14), per docs/domain.md rules 1 and 2.
    "us": ComplianceProfile(
        name="us",
        window=ContactWindow(start=time(8), end=time(21)),
        holidays="US",
        call_attempts_per_7_days=7,
        no_call_days_after_conversation=7,
    ),
}


def profile(name: str) -> ComplianceProfile:
    return PROFILES[name]
