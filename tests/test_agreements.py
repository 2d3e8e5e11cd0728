"""The `record_agreement` activity against the real PostgreSQL: rendered from the
reviewed templates, stored once with its hash, confirmed by one SMS per key."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.agreements import AgreementActivities
from activities.providers.sandbox import SandboxProvider
from dunning.templates import current
from schemas.activity_io import AgreementReceipt, AgreementRequest

BASE = {
    "name": "Wang Xiaoming",
    "currency": "CNY",
    "balance": "1070.00",
    "operator": "op-7",
}


def request(kind: str = "promise", language: str = "en", **changes: Any) -> AgreementRequest:
    loan = f"L-agr-{uuid.uuid4().hex[:8]}"
    variables = {**BASE, "loan_id": loan, "amount": "500.00", "pay_by": "2026-11-01"}
    schedule: list[tuple[str, str]] = []
    if kind == "plan":
        variables.pop("pay_by")
        variables["amount"] = "1070.00"
        schedule = [("2026-11-01", "400.00"), ("2026-12-01", "400.00"), ("2027-01-01", "270.00")]
    if kind == "settlement":
        variables.update(amount="800.00", waiver="270.00")
    fields: dict[str, Any] = {
        "case_id": f"case-{loan}",
        "idempotency_key": f"case-{loan}:agreement:12",
        "kind": kind,
        "agreement_seq": 12,
        "recipient": "+8613800138000",
        "language": language,
        "variables": variables,
        "schedule": schedule,
        **changes,
    }
    return AgreementRequest(**fields)


async def record(pool: asyncpg.Pool, req: AgreementRequest) -> AgreementReceipt:
    provider = SandboxProvider(pool)
    activities = AgreementActivities(pool, sms_gateway=provider, templates=current())
    result: AgreementReceipt = await ActivityEnvironment().run(activities.record_agreement, req)
    return result


async def stored(pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, kind, language, body, sha256 FROM agreements WHERE case_id = $1", case_id
    )
    return rows


async def outbox(pool: asyncpg.Pool, key: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT channel, recipient, template, body FROM outbox WHERE idempotency_key = $1", key
    )
    return rows


async def test_a_promise_is_stored_once_with_its_hash_and_confirmed_once(
    pool: asyncpg.Pool,
) -> None:
    req = request("promise")
    first = await record(pool, req)
    again = await record(pool, req)  # a retried activity

    assert again.document_id == first.document_id
    assert again.sha256 == first.sha256
    assert again.provider_ref == first.provider_ref

    rows = await stored(pool, req.case_id)
    assert len(rows) == 1
    row = rows[0]
    assert str(row["id"]) == first.document_id
    assert row["kind"] == "promise" and row["language"] == "en"
    assert row["sha256"] == first.sha256 == hashlib.sha256(row["body"].encode()).hexdigest()
    body: str = row["body"]
    for fact in ("Wang Xiaoming", req.variables["loan_id"], "500.00 CNY", "2026-11-01", "op-7"):
        assert fact in body
    assert "{{" not in body and "{%" not in body

    sent = await outbox(pool, req.idempotency_key)
    assert len(sent) == 1
    sms = sent[0]
    assert sms["channel"] == "sms"
    assert sms["recipient"] == "+8613800138000"
    assert sms["template"] == "agreement_confirmation"
    assert "promise to pay" in sms["body"] and "Reply STOP to opt out." in sms["body"]
    assert f"{req.variables['loan_id']}-12" in sms["body"]  # the reference to quote


async def test_a_plan_lists_its_schedule(pool: asyncpg.Pool) -> None:
    req = request("plan")
    receipt = await record(pool, req)
    (row,) = await stored(pool, req.case_id)
    assert row["sha256"] == receipt.sha256
    lines = row["body"].splitlines()
    assert "1. 400.00 CNY due by 2026-11-01" in lines
    assert "2. 400.00 CNY due by 2026-12-01" in lines
    assert "3. 270.00 CNY due by 2027-01-01" in lines
    assert "3 instalments" in row["body"]


async def test_a_settlement_in_chinese_states_the_waiver(pool: asyncpg.Pool) -> None:
    req = request("settlement", language="zh-CN")
    receipt = await record(pool, req)
    (row,) = await stored(pool, req.case_id)
    assert row["language"] == "zh-CN"
    assert row["sha256"] == receipt.sha256
    assert "和解协议" in row["body"]
    assert "800.00 CNY" in row["body"] and "270.00 CNY" in row["body"]
    assert "减免" in row["body"]
    (sms,) = await outbox(pool, req.idempotency_key)
    assert "和解协议" in sms["body"] and "回复TD退订" in sms["body"]


async def test_a_chinese_plan_renders(pool: asyncpg.Pool) -> None:
    req = request("plan", language="zh-CN")
    await record(pool, req)
    (row,) = await stored(pool, req.case_id)
    assert "第 1 期：2026-11-01 前还款 400.00 CNY" in row["body"]  # noqa: RUF001


async def test_stored_documents_are_append_only(pool: asyncpg.Pool) -> None:
    req = request("promise")
    await record(pool, req)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE agreements SET body = 'changed' WHERE case_id = $1", req.case_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("DELETE FROM agreements WHERE case_id = $1", req.case_id)


@pytest.mark.parametrize(
    "broken",
    [
        {"kind": "refund"},  # no such kind, and no template for it
        {"language": "fr"},  # no template in that language
        {"variables": {"name": "x"}},  # the template's variables are missing
    ],
    ids=["unknown-kind", "unknown-language", "missing-variables"],
)
async def test_what_cannot_be_rendered_fails_for_good_and_stores_nothing(
    pool: asyncpg.Pool, broken: dict[str, Any]
) -> None:
    valid = request("promise")
    # model_construct: a request that skipped validation, as a buggy caller might send.
    req = AgreementRequest.model_construct(**{**valid.model_dump(), **broken})
    with pytest.raises(ApplicationError) as raised:
        await record(pool, req)
    assert raised.value.non_retryable
    assert await stored(pool, valid.case_id) == []
    assert await outbox(pool, valid.idempotency_key) == []


async def test_a_request_key_reused_for_another_document_is_refused(pool: asyncpg.Pool) -> None:
    promise = request("promise")
    await record(pool, promise)
    settlement = request(
        "settlement", case_id=promise.case_id, idempotency_key=promise.idempotency_key
    )
    with pytest.raises(ApplicationError) as raised:
        await record(pool, settlement)
    assert raised.value.non_retryable
    assert "already stored another document (promise)" in str(raised.value)


async def test_store_agreement_stores_the_document_and_sends_nothing(pool: asyncpg.Pool) -> None:
    """Rules 3: the document only; the confirmation is a contact decided by the guard."""
    req = request("promise").model_copy(update={"recipient": ""})
    activities = AgreementActivities(pool, sms_gateway=SandboxProvider(pool), templates=current())
    first: AgreementReceipt = await ActivityEnvironment().run(activities.store_agreement, req)
    again: AgreementReceipt = await ActivityEnvironment().run(activities.store_agreement, req)

    [row] = await stored(pool, req.case_id)
    assert first == again and str(row["id"]) == first.document_id
    assert row["sha256"] == hashlib.sha256(row["body"].encode()).hexdigest() == first.sha256
    assert await outbox(pool, req.idempotency_key) == []


async def test_another_request_at_the_same_sequence_number_stores_its_own_document(
    pool: asyncpg.Pool,
) -> None:
    """A request that gave up after its row was written does not lend it to the next."""
    first = request("promise").model_copy(update={"idempotency_key": "k-1"})
    second = first.model_copy(
        update={"idempotency_key": "k-2", "variables": {**first.variables, "amount": "400.00"}}
    )
    activities = AgreementActivities(pool, sms_gateway=SandboxProvider(pool), templates=current())
    one = await ActivityEnvironment().run(activities.store_agreement, first)
    two = await ActivityEnvironment().run(activities.store_agreement, second)
    assert one.document_id != two.document_id and one.sha256 != two.sha256
