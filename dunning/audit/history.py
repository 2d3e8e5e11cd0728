"""`dunning audit history`: a case's timeline for auditors, personal data masked.

The audit log keeps the borrower's name, phones and address (in `case_opened`); a
timeline is read by more people than need those, so they are masked unless an
auditor asks to reveal them, and every reveal is itself recorded (`audit_reveals`)
before anything is shown.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from activities.audit_store import AuditRow, read_rows
from dunning.audit.fold import parse
from schemas.case import PERSONAL_FIELDS
from workflows.status_view import describe

MASK = "***"


class TimelineRow(BaseModel):
    """One row of a case's timeline, as the CLI, the API and the console show it."""

    model_config = ConfigDict(frozen=True)

    seq: int
    occurred_at: datetime
    event_type: str
    actor: str
    summary: str
    run_id: str
    hash: str | None
    payload: dict[str, Any] = Field(description="the event; names, phones and address masked")

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json")
        return data


def mask_name(name: str) -> str:
    return f"{name[:1]}{MASK}"


def mask_phone(phone: str) -> str:
    return f"{MASK}{phone[-2:]}"


def mask_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy with the borrower's and the emergency contacts' names, phones and the
    address masked (other fields as is)."""
    masked = copy.deepcopy(payload)
    borrower = masked.get("case", {}).get("borrower")
    if isinstance(borrower, dict):
        for field, masking in PERSONAL_FIELDS.items():
            value = borrower.get(field)
            if value is None:
                continue
            if masking == "name":
                borrower[field] = mask_name(str(value))
            elif masking == "phone" and isinstance(value, list):
                borrower[field] = [mask_phone(str(p)) for p in value]
            else:
                borrower[field] = MASK
        for contact in borrower.get("emergency_contacts") or []:
            if isinstance(contact, dict):
                contact["name"] = mask_name(str(contact.get("name", "")))
                contact["phone"] = mask_phone(str(contact.get("phone", "")))
    return masked


def timeline(rows: list[AuditRow], reveal: bool = False) -> list[TimelineRow]:
    result = []
    for row in rows:
        try:
            summary = describe(parse(row))
        except ValueError:  # pydantic's ValidationError is a ValueError
            summary = "(not a valid event: run `dunning audit verify`)"
        result.append(
            TimelineRow(
                seq=row.seq,
                occurred_at=row.occurred_at,
                event_type=row.event_type,
                actor=row.actor,
                summary=summary,
                run_id=row.run_id,
                hash=row.hash,
                payload=row.payload if reveal else mask_payload(row.payload),
            )
        )
    return result


async def case_timeline(
    pool: asyncpg.Pool,
    case_id: str,
    reveal_by: str | None = None,
    reason: str | None = None,
) -> list[TimelineRow]:
    """The case's timeline; unmasked only for a named auditor with a reason, and only
    once the reveal is on record (same transaction as the read)."""
    if reveal_by is not None and not (reveal_by.strip() and (reason or "").strip()):
        raise ValueError("a reveal needs an auditor id and a reason")
    async with pool.acquire() as conn, conn.transaction():
        rows = await read_rows(conn, case_id)
        if reveal_by is not None and rows:
            await record_reveal(conn, case_id, reveal_by, reason or "")
    return timeline(rows, reveal=reveal_by is not None)


async def record_reveal(conn: asyncpg.Connection, case_id: str, auditor: str, reason: str) -> None:
    """Put a reveal on record (`audit_reveals`): who, why, when (the database's now)."""
    if not (auditor.strip() and reason.strip()):
        raise ValueError("a reveal needs an auditor id and a reason")
    await conn.execute(
        "INSERT INTO audit_reveals (case_id, auditor, reason) VALUES ($1, $2, $3)",
        case_id,
        auditor.strip(),
        reason.strip(),
    )
