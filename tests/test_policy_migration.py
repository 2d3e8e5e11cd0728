"""A case keeps the policy version it opened with until an operator moves it, and the
move is an audited action the case can refuse (`dunning policy migrate`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.worker import Worker

from dunning.policies import SHIPPED
from dunning.settings import Settings
from schemas.commands import MigratePolicy
from schemas.events import CaseOpened
from schemas.policy import Policy
from tests.factories import case_input, case_payload, policy
from tests.records import audit_events
from tests.test_opening import DUNNING, cli_env
from workflows import actions
from workflows.decide import decide
from workflows.evolve import evolve
from workflows.state import CaseState

OPENED = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
OP = {"operator": "op-7", "reason": "new collections strategy"}


def _in_negotiation() -> CaseState:
    state = evolve(
        None,
        CaseOpened(at=OPENED, case=case_input(loan={"days_past_due": 20}), policy=policy()),
    )
    while state.stage is None:
        for event in decide(state, OPENED).events:
            state = evolve(state, event)
    assert state.stage.name == "negotiation"
    return state


def _version_2(**changes: object) -> Policy:
    return policy().model_copy(update={"version": 2, **changes})


def test_a_migration_keeps_the_stage_and_restarts_its_cadence_under_the_new_version() -> None:
    state = _in_negotiation()
    later = OPENED + timedelta(days=3)
    [event] = actions.migrate_policy(state, MigratePolicy(policy=_version_2(), **OP), later)
    moved = evolve(state, event)
    assert event.type == "policy_migrated" and event.previous == "default@1"
    assert moved.policy.ref == "default@2" and moved.stage is not None
    assert moved.stage.name == "negotiation" and moved.done == {}
    assert moved.stage_offset == moved.active_elapsed(later)
    assert moved.days_past_due(later) == state.days_past_due(later), "the clock is kept"


REFUSED = [
    (lambda: policy(), "already runs under default@1"),
    (lambda: _version_2(day_length=timedelta(hours=1)), "counts days of 1:00:00"),
    (
        lambda: _version_2(
            stages=tuple(s for s in policy().stages if s.name != "negotiation"),
            agreements=policy().agreements.model_copy(update={"resume_stage_after_broken": None}),
        ),
        "has no stage 'negotiation'",
    ),
]


@pytest.mark.parametrize(("build", "problem"), REFUSED)
def test_a_migration_the_case_cannot_take_is_refused_and_changes_nothing(
    build: object, problem: str
) -> None:
    state = _in_negotiation()
    before = state.model_dump()
    with pytest.raises(actions.Rejected, match=problem):
        actions.migrate_policy(state, MigratePolicy(policy=build(), **OP), OPENED)  # type: ignore[operator]
    assert state.model_dump() == before


async def test_publishing_a_version_changes_no_open_case_and_migrate_moves_one(
    dev_worker: Worker,
    stack_settings: Settings,
    pool: asyncpg.Pool,
    task_queue: str,
    tmp_path: Path,
) -> None:
    loan = f"L-mig-{uuid.uuid4().hex[:8]}"
    env = cli_env(stack_settings.model_copy(update={"task_queue": task_queue}))

    async def dunning(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [DUNNING, *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(case_payload(loan)))
    assert (await dunning("open", str(case_file))).returncode == 0

    # The lender publishes default@2 (its own folder comes first); default@1 stays pinned.
    published = tmp_path / "policies"
    published.mkdir()
    text = (SHIPPED / "default.toml").read_text(encoding="utf-8")
    (published / "default.toml").write_text(
        text.replace("version = 1", "version = 2", 1), encoding="utf-8"
    )
    lender = {"DUNNING_POLICY_DIR": str(published)}

    async def migrate(to: str, *more: str) -> subprocess.CompletedProcess[str]:
        args = ("--to", to, "--reason", "strategy 2027", "--operator", "op-7", *more)
        return await dunning("policy", "migrate", loan, *args, **lender)

    shown = await dunning("status", loan, "--json", **lender)
    assert json.loads(shown.stdout)["policy"] == "default@1", "publishing changed nothing"

    missing = await migrate("default@7")
    assert missing.returncode == 2 and "no default@7.toml" in missing.stderr

    moved = await migrate("default@2", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["status"]["policy"] == "default@2"

    again = await migrate("default@2")
    assert again.returncode == 1 and "already runs under default@2" in again.stderr

    for _ in range(50):  # the audit flush follows the update
        events = await audit_events(pool, f"case-{loan}")
        migrated = [e for e in events if e.type == "policy_migrated"]
        if migrated:
            break
        await asyncio.sleep(0.2)
    assert [(e.previous, e.policy.ref, e.operator) for e in migrated] == [  # type: ignore[union-attr]
        ("default@1", "default@2", "op-7")
    ]
