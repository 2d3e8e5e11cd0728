"""Helpers for the collectors' queue tests: a policy whose only action is an agent
call (an accelerated hour-long day, no contact window: a task lasts an hour), a case
on it started on the dev server, waiting for its task, a collector's token."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHandle

from dunning.api import tokens
from schemas.policy import Policy
from schemas.roles import Role
from tests.api_support import Caller
from tests.factories import case_input
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection


def team() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def agent_policy(team: str, window: dict[str, str] | None = None) -> Policy:
    return Policy.model_validate(
        {
            "name": "agent-calls",
            "version": 1,
            "compliance": "cn",
            "day_length": "PT1H",
            "contact_window": window,
            "stages": [
                {
                    "name": "reminder",
                    "from_dpd": 1,
                    "actions": [{"channel": "agent_call", "every_days": 1, "team": team}],
                }
            ],
        }
    )


async def open_agent_case(
    client: Client,
    task_queue: str,
    team: str,
    loan: str,
    window: dict[str, str] | None = None,
    **borrower: Any,
) -> WorkflowHandle[Any, Any]:
    case = case_input(loan, borrower=borrower) if borrower else case_input(loan)
    return await client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=agent_policy(team, window)),
        id=case.case_id,
        task_queue=task_queue,
    )


async def task_of(
    pool: asyncpg.Pool, case_id: str, state: str = "queued", wait_s: float = 30
) -> int:
    """The id of the case's task once it is in `state`."""
    for _ in range(int(wait_s * 10)):
        found = await pool.fetchval(
            "SELECT id FROM call_tasks WHERE case_id = $1 AND state = $2 ORDER BY id DESC",
            case_id,
            state,
        )
        if found is not None:
            return int(found)
        await asyncio.sleep(0.1)
    rows = await pool.fetch("SELECT id, state FROM call_tasks WHERE case_id = $1", case_id)
    raise AssertionError(f"{case_id}: no {state} task ({[dict(r) for r in rows]})")


async def collector(owner_pool: asyncpg.Pool, team: str | None) -> Caller:
    name = f"collector-{uuid.uuid4().hex[:6]}"
    return Caller(Role.collector, name, await tokens.create(owner_pool, Role.collector, name, team))
