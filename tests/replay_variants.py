"""Deliberately non-deterministic versions of `LoanCollection`, for `tests/test_replay.py`.

Each registers under the real workflow type name, as a careless edit of
workflows/loan_collection.py would, so replaying the committed histories with it
must fail. They live in a module of their own because the worker sandbox re-imports a
workflow's module, and this one imports nothing but the workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.activity_io import AuditBatch
    from schemas.status import CaseStatus
    from workflows.inputs import LoanCollectionInput
    from workflows.loan_collection import AUDIT_TIMEOUT, PROVIDER_RETRY, LoanCollection


@workflow.defn(name="LoanCollection")
class TimerFirst(LoanCollection):
    """Waits a moment before anything else: a timer where history has an activity."""

    @workflow.run
    async def run(self, params: LoanCollectionInput) -> CaseStatus:
        await workflow.sleep(timedelta(milliseconds=1))
        return await super().run(params)


@workflow.defn(name="LoanCollection")
class PublishAfterAuditUnpatched(LoanCollection):
    """The change made in workflows/loan_collection.py under `workflow.patched`, made
    without the patch: search attributes are upserted after the audit append instead
    of before it, so every flush's commands come in a different order."""

    @workflow.run
    async def run(self, params: LoanCollectionInput) -> CaseStatus:
        return await super().run(params)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            info = workflow.info()
            await workflow.execute_activity(
                "append_audit",
                AuditBatch(workflow_id=info.workflow_id, run_id=info.run_id, records=batch),
                start_to_close_timeout=AUDIT_TIMEOUT,
                retry_policy=PROVIDER_RETRY,
                summary=f"audit {batch[0].seq}..{batch[-1].seq}",
            )
        self._publish()
