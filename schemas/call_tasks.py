"""The collectors' work queue: what a call task is, one definition.

A policy's `agent_call` action (schemas/channels.py) becomes a task in its team's queue
(`call_tasks`, dunning/db/migrations/0012_call_tasks.sql) instead of a dialer call. A
collector of the team claims the next one by `PRIORITY`, the compliance guard checks it
again at the claim, and the collector completes it with an `Outcome`, which becomes the
attempt's outcome exactly as a dialer's would (caps, reachability). See docs/console.md,
"The collectors' queue".
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict

TaskState = Literal["queued", "claimed", "completed", "expired", "withdrawn"]
# What the collector reports. `promise`: the borrower promised an amount by a date, which
# the case recorded (a promise Update) before the task was completed.
Outcome = Literal["answered", "no_answer", "wrong_number", "promise"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

# The team of a case's tasks when the policy's action names none.
DEFAULT_TEAM = "collections"
TEAM_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"

# The queue's order (SQL over `call_tasks`): the later stage first, then the oldest broken
# promise, then the larger balance, then the task waiting longest; the id breaks ties.
PRIORITY = "stage_rank DESC, promise_due ASC NULLS LAST, balance DESC, due_at ASC, id ASC"


class ClaimCheck(BaseModel):
    """The question a claim asks the case (`LoanCollection.attempt_check`): may the
    attempt with this idempotency key still be made at `at`?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str
    at: AwareDatetime


class ClaimAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    rule: str | None = None  # the refusing rule (a Block's), e.g. paused, contact_window
    detail: str | None = None
