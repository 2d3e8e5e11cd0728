"""`dunning audit export`: a case file an auditor can take away and check offline.

Per case, a folder with the audit rows (JSONL, hashes included), the Temporal
history of every run of the continue-as-new chain (JSON, replayable), and a
`manifest.json` holding the SHA-256 of every other file and the chain's head hash,
so the folder can be checked without this software and a later rewrite of the
whole log (which a hash chain alone cannot reveal) shows against the kept head.

The files hold personal data as stored (the histories carry the workflow input):
keep the folder where the case data may be.

`export_archive` packs the same folder into one zip, and `recorded_export` is the
download of the console and the HTTP API: the case known, the reveal on record
(`audit_reveals`, reason `export: …`) before the zip is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from activities.audit_store import read_rows
from dunning.audit.history import record_reveal

MANIFEST = "manifest.json"
EXPORT_REASON = "export: {reason}"  # an export holds the clear fields: recorded as a reveal


async def run_histories(client: Client, case_id: str) -> list[tuple[str, WorkflowHistory]]:
    """Histories of the case's runs, first to latest, following continue-as-new.

    Starts at the chain's first run (from describe) and follows each run's
    `continued_as_new` event, which works on every server (no visibility needed).
    """
    try:
        described = await client.get_workflow_handle(case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    run_id: str | None = (
        described.raw_description.workflow_execution_info.first_run_id or described.run_id
    )
    histories = []
    while run_id:
        history = await client.get_workflow_handle(case_id, run_id=run_id).fetch_history()
        histories.append((run_id, history))
        run_id = _next_run(history)
    return histories


def _next_run(history: WorkflowHistory) -> str | None:
    if not history.events:
        return None
    last = history.events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    attributes = last.workflow_execution_continued_as_new_event_attributes
    return attributes.new_execution_run_id or None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


async def export_case(
    pool: asyncpg.Pool, client: Client | None, case_id: str, directory: Path
) -> Path:
    """Write the case's folder under `directory`; returns the manifest's path."""
    folder = directory / case_id
    folder.mkdir(parents=True, exist_ok=True)
    async with pool.acquire() as conn:
        rows = await read_rows(conn, case_id)
    audit = folder / "audit.jsonl"
    audit.write_text(
        "".join(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    files = [audit]
    histories = await run_histories(client, case_id) if client is not None else []
    runs = []
    for index, (run_id, history) in enumerate(histories, start=1):
        path = folder / f"history-{index:03d}-{run_id}.json"
        path.write_text(history.to_json(), encoding="utf-8")
        files.append(path)
        runs.append(run_id)
    manifest: dict[str, Any] = {
        "case_id": case_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "rows": len(rows),
        "head_hash": rows[-1].hash if rows else None,
        "runs": runs,
        "files": {f.name: sha256_file(f) for f in files},
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


async def export_archive(
    pool: asyncpg.Pool, client: Client | None, case_id: str, directory: Path
) -> tuple[Path, Path]:
    """The case's folder (`export_case`, under `directory`) packed as
    `<directory>/<case_id>.zip`, its entries under `<case_id>/`; returns the zip's path
    and the manifest's."""
    manifest = await export_case(pool, client, case_id, directory / "folder")
    archive = directory / f"{case_id}.zip"

    def pack() -> None:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
            for path in sorted(manifest.parent.iterdir()):
                packed.write(path, f"{case_id}/{path.name}")

    await asyncio.to_thread(pack)
    return archive, manifest


def archive_name(case_id: str) -> str:
    """The download's file name: the case id (a loan id, as in every URL), nothing else."""
    return f"audit-export-{case_id}.zip"


async def known_case(pool: asyncpg.Pool, client: Client, case_id: str) -> bool:
    """The case has audit rows, or Temporal knows it."""
    async with pool.acquire() as conn:
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM audit_events WHERE case_id = $1)", case_id
        ):
            return True
    try:
        await client.get_workflow_handle(case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def recorded_export(
    pool: asyncpg.Pool, client: Client, case_id: str, auditor: str, reason: str, directory: Path
) -> Path | None:
    """The case's zip under `directory` (`export_archive`), once the reveal is recorded;
    None, and nothing recorded, for a case nobody knows."""
    if not await known_case(pool, client, case_id):
        return None
    async with pool.acquire() as conn:
        await record_reveal(conn, case_id, auditor, EXPORT_REASON.format(reason=reason))
    archive, _ = await export_archive(pool, client, case_id, directory)
    return archive
