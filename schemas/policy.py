"""Escalation policy: stages by days past due, each with its channel cadence.

A policy is data (a TOML file) and is pinned into a case when it opens, so a
published change never alters an open case silently.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.call_tasks import TEAM_PATTERN
from schemas.channels import CHANNELS, TEMPLATED, Channel

FROZEN = ConfigDict(extra="forbid", frozen=True)

# A policy day is a real day, on which the legal contact window and quiet days apply,
# or an accelerated day of at most an hour (demos, tests), which keeps the policy's own
# window and has no quiet days. Anything in between would be treated as accelerated and
# switch the law's window off, so it is refused when a policy is loaded.
REAL_DAY = timedelta(days=1)
MAX_ACCELERATED_DAY = timedelta(hours=1)


def day_length_problem(day: timedelta) -> str | None:
    """Why `day` cannot be a policy's day length, or None.

    Applied where policies are loaded and checked (`dunning.policies.load_file`), not
    in the model: cases opened before the rule pinned their policy into `CaseOpened`,
    and those events must still parse when they are replayed."""
    if day == REAL_DAY or timedelta(0) < day <= MAX_ACCELERATED_DAY:
        return None
    return (
        "must be exactly 1 day (real time: the contact window and quiet days apply) or "
        "an accelerated day of at most 1 hour"
    )


class ContactWindow(BaseModel):
    """Hours of the borrower's local day in which contact may happen; [start, end)."""

    model_config = FROZEN

    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> ContactWindow:
        if self.start >= self.end:
            raise ValueError("contact_window: start must be before end")
        return self


class ActionSpec(BaseModel):
    """One channel's cadence inside a stage.

    Days count from the stage's start. `every_days` repeats from `start_day`;
    `at_days` lists exact days; neither means once, on `start_day`.
    """

    model_config = FROZEN

    channel: Channel
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$")
    every_days: int | None = Field(default=None, ge=1, le=365)
    at_days: tuple[int, ...] | None = Field(default=None, min_length=1)
    start_day: int = Field(default=0, ge=0, le=3650)
    team: str | None = Field(
        default=None,
        pattern=TEAM_PATTERN,
        description="a channel a person performs (agent_call): the team whose queue its "
        "tasks join (schemas.call_tasks.DEFAULT_TEAM when none)",
        exclude_if=lambda value: value is None,  # policies without one dump as before
    )

    @model_validator(mode="after")
    def _coherent(self) -> ActionSpec:
        if self.every_days is not None and self.at_days is not None:
            raise ValueError("give either every_days or at_days, not both")
        if self.at_days is not None:
            if any(day < 0 for day in self.at_days):
                raise ValueError("at_days: days must be zero or more")
            if list(self.at_days) != sorted(set(self.at_days)):
                raise ValueError("at_days: days must be increasing and distinct")
        if self.channel in TEMPLATED and self.template is None:
            raise ValueError(f"an {self.channel} action needs a template")
        if CHANNELS[self.channel].once and self.every_days is not None:
            raise ValueError(f"{self.channel} happens once: every_days is not allowed")
        if self.team is not None and not CHANNELS[self.channel].person:
            raise ValueError(f"team: only for a channel a person performs, not {self.channel}")
        return self

    def occurrence_day(self, index: int) -> int | None:
        """Day (from stage start) of the `index`-th occurrence, or None when there is none."""
        if self.at_days is not None:
            return self.at_days[index] if index < len(self.at_days) else None
        if self.every_days is not None:
            return self.start_day + index * self.every_days
        return self.start_day if index == 0 else None


class Stage(BaseModel):
    model_config = FROZEN

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    from_dpd: int = Field(ge=0, le=3650, description="days past due at which the stage starts")
    actions: tuple[ActionSpec, ...] = ()


class AgreementTerms(BaseModel):
    """What operators may agree with a borrower under this policy."""

    model_config = FROZEN

    promise_grace_days: int = Field(default=2, ge=0, le=30)
    promise_max_days: int = Field(
        default=30, ge=1, le=365, description="how far ahead a promise's date may be"
    )
    plan_grace_days: int = Field(default=3, ge=0, le=30)
    settlement_floor: Decimal = Field(
        default=Decimal("0.5"),
        gt=0,
        le=1,
        description="lowest settlement, as a share of the balance",
    )
    settlement_approval_share: Decimal = Field(
        default=Decimal("0.2"),
        ge=0,
        le=1,
        description="a waiver above this share of the balance needs a supervisor",
    )
    resume_stage_after_broken: str | None = Field(
        default=None,
        description="a broken promise or plan resumes collection at least at this stage; "
        "None resumes where the case was",
    )


class Aging(BaseModel):
    """How pauses move the days past due that drive escalation, and how collection
    starts again after one."""

    model_config = FROZEN

    exclude_paused_days: bool = Field(
        default=True,
        description="paused days do not count towards escalation (disputes and agreements "
        "always stop the clock)",
    )
    max_stages_per_resume: int = Field(
        default=1,
        ge=0,
        le=10,
        description="a resume moves the case at most this many stages up, whatever the "
        "days past due reached meanwhile (only matters when paused days count)",
    )
    resume_grace_days: int = Field(
        default=0,
        ge=0,
        le=30,
        description="after a resume, the stage's contact cadence starts again this many days later",
    )


class Policy(BaseModel):
    """A named, versioned escalation policy."""

    model_config = FROZEN

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)
    version: int = Field(ge=1)
    description: str = ""
    day_length: timedelta = Field(
        default=timedelta(days=1),
        gt=timedelta(0),
        description="length of a policy 'day': exactly 1 day, or an accelerated day of at "
        "most 1 hour (demos and tests; no legal window, no quiet days)",
    )
    contact_window: ContactWindow | None = Field(
        default=None, description="borrower-local hours for contact; None means any time"
    )
    stages: tuple[Stage, ...] = Field(min_length=1)
    agreements: AgreementTerms = AgreementTerms()
    aging: Aging = Aging()
    compliance: Literal["cn", "us"] | None = Field(
        default="cn",
        description="the compliance profile (schemas/compliance.py): window, caps, quiet days. "
        "None only in policies pinned by cases opened before the guard existed (they keep "
        "the first decision rules)",
    )
    quiet_days: str = Field(
        default="profile",
        pattern=r"^(profile|none|[A-Z]{2})$",
        description="public holidays of this country (ISO 3166 code) are quiet days; "
        "'profile': the profile's country; 'none': no quiet days",
    )

    @model_validator(mode="after")
    def _stages_coherent(self) -> Policy:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stages: names must be unique")
        thresholds = [stage.from_dpd for stage in self.stages]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("stages: from_dpd must be strictly increasing")
        for index, stage in enumerate(self.stages):
            has_handoff = any(a.channel == "legal_handoff" for a in stage.actions)
            if has_handoff and index != len(self.stages) - 1:
                raise ValueError(f"stages[{index}]: legal_handoff belongs in the last stage only")
        target = self.agreements.resume_stage_after_broken
        if target is not None and target not in names:
            raise ValueError(f"agreements.resume_stage_after_broken: no stage named {target!r}")
        return self

    def stage_index(self, name: str) -> int:
        return [stage.name for stage in self.stages].index(name)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"
