"""Writes `tests/fixtures/report_audit.json`: the small audit log the report's figures
are checked against (`tests/test_report_figures.py`, whose expected values are worked
out by hand from the story below, not from this code).

    .venv/bin/python -m tests.make_report_fixture

Every event is built with the models of `schemas/events.py` (so field names are the
engine's), then dumped as the audit store does (`model_dump(mode="json")`). Two things
the models do not have yet are added to the JSON by hand, as the engine will write
them: `case_opened.payload.assignment` (strategies) and rows of an event type the
report does not know (`contact_withdrawn`), which it must ignore.

The period is March 2020 (UTC); loan ids start with `RPT-` so no other test's cases
fall into it. Amounts are CNY unless said otherwise. The story:

experiment `exp-q1` of strategy `retail`, segment `prime`:
  champion (default@1)
    A1 opens 03-02 at 1 dpd, 1000.00: SMS, call answered (a promise of 1000 by 03-10),
       pays 1000 on 03-09: paid, 7 days.
    A2 opens 03-02 at 1 dpd, 500.00: SMS, call unanswered, call answered (a promise of
       200 by 03-08), promise broken 03-11, negotiation 03-22, pays 100 on 03-25; pays
       the rest on 04-02 (after the period: not counted). Open at the end.
    A3 opens 03-10 at 20 dpd (negotiation at once), 2000.00: SMS, call busy, call wrong
       number, call connected, settlement of 1500, pays 1500 on 03-18: settled.
    A4 opens 03-03 at 80 dpd (field visit at once), 800.00: SMS, call unanswered, a call
       skipped, an SMS deferred, a contact_withdrawn row, legal 03-13: transferred.
  challenger (default@2)
    B1 opens 03-02 at 1 dpd, 1000.00: SMS, call answered, pays 400 on 03-05 and 650 on
       03-06 (50 overpaid): paid, 4 days.
    B2 opens 03-05 at 1 dpd, 600.00: call answered (a promise of 600 by 03-12), pays
       300 on 03-10 and 300 on 03-12: paid with the promise in force, 7 days.
    B3 opens 03-04 at 1 dpd, 400.00: call unanswered, call answered (a promise of 200
       by 03-16), pays 200 on 03-15, promise kept, ended 03-17, negotiation 03-20. Open.
    B4 opens 03-20 at 1 dpd, 1000.00: SMS, written off 03-25.
no strategy (default@1):
    N1 opens 03-08 at 1 dpd, 300.00: pays 300 on 03-09: paid, 1 day.
    N2 opens 03-09 at 1 dpd, USD 100.00: an SMS. Open.
outside the period (not counted anywhere):
    O1 opens 02-25 (before), pays in March.   O2 opens 04-01 00:00 (the end, exclusive).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from dunning.policies import load
from schemas.case import CaseInput
from schemas.events import (
    CaseClosed,
    CaseOpened,
    ContactAttempted,
    ContactDeferred,
    ContactSkipped,
    Event,
    HandedToLegal,
    PaymentReceived,
    PromiseEnded,
    PromiseKept,
    PromiseMade,
    SettlementAgreed,
    StageEntered,
)
from schemas.policy import Policy

FIXTURE = Path(__file__).parent / "fixtures" / "report_audit.json"
CHAMPION = load("default")
CHALLENGER = CHAMPION.model_copy(update={"version": 2, "description": "challenger"})


def at(day: str, hour: int = 8) -> datetime:
    """A time in 2020 (`MM-DD`), UTC."""
    month, dom = (int(part) for part in day.split("-"))
    return datetime(2020, month, dom, hour, tzinfo=UTC)


class Case:
    """One case's events, in order, as the workflow would append them."""

    def __init__(
        self,
        loan: str,
        opened: str,
        dpd: int,
        amounts: dict[str, str],
        policy: Policy = CHAMPION,
        arm: str | None = None,
        currency: str = "CNY",
        hour: int = 8,
    ) -> None:
        self.loan_id = f"RPT-{loan}"
        self.policy = policy
        self.balance = sum((Decimal(v) for v in amounts.values()), Decimal(0))
        case = CaseInput.model_validate(
            {
                "borrower": {
                    "id": f"B-{loan}",
                    "name": "Test Borrower",
                    "phones": ["+86 138 0013 8000"],
                    "timezone": "Asia/Shanghai",
                },
                "loan": {
                    "id": self.loan_id,
                    "currency": currency,
                    "due_date": "2020-01-01",
                    "days_past_due": dpd,
                    "product": "consumer-instalment",
                    **amounts,
                },
                "policy": policy.ref,
            }
        )
        self.rows: list[dict[str, Any]] = []
        opening = CaseOpened(at=at(opened, hour), case=case, policy=policy, rules=2)
        extra: dict[str, Any] = {}
        if arm is not None:
            extra["assignment"] = {
                "strategy": "retail",
                "segment": "prime",
                "experiment": "exp-q1",
                "arm": arm,
                "policy": policy.ref,
            }
        self.add(opening, **extra)
        self.dpd = dpd
        self.opened = opening.at

    def add(self, event: Event, **extra: Any) -> Case:
        self.rows.append({**event.model_dump(mode="json"), **extra})
        return self

    def raw(self, event_type: str, day: str, **payload: Any) -> Case:
        """A row of an event type the report does not know."""
        self.rows.append(
            {"type": event_type, "at": at(day).isoformat(), "actor": "system", **payload}
        )
        return self

    def stage(self, day: str, index: int) -> Case:
        moment = at(day)
        dpd = self.dpd + (moment - self.opened).days
        return self.add(
            StageEntered(
                at=moment,
                stage=self.policy.stages[index].name,
                stage_index=index,
                days_past_due=dpd,
                active_offset=moment - self.opened,
                skipped=tuple(s.name for s in self.policy.stages[:index])
                if not self.rows[1:]
                else (),
            )
        )

    def _stage_name(self) -> str:
        stages = [r for r in self.rows if r["type"] == "stage_entered"]
        return str(stages[-1]["stage"])

    def contact(self, day: str, channel: str, outcome: str, hour: int = 10) -> Case:
        n = len(self.rows) + 1
        return self.add(
            ContactAttempted(
                at=at(day, hour),
                channel=channel,  # type: ignore[arg-type]
                stage=self._stage_name(),
                action_index=0 if channel == "sms" else 1,
                occurrence=n,
                template="reminder" if channel == "sms" else None,
                idempotency_key=f"case-{self.loan_id}:{n}",
                provider_ref=f"ref-{self.loan_id}-{n}",
                outcome=outcome,
            )
        )

    def pay(self, day: str, amount: str, overpaid: str = "0", hour: int = 12) -> Case:
        paid = Decimal(amount)
        applied = paid - Decimal(overpaid)
        self.balance -= applied
        return self.add(
            PaymentReceived(
                at=at(day, hour),
                amount=paid,
                reference=f"P-{len(self.rows)}",
                applied_penalty=Decimal(0),
                applied_fees=Decimal(0),
                applied_interest=Decimal(0),
                applied_principal=applied,
                overpaid=Decimal(overpaid),
                balance_after=self.balance,
            )
        )

    def promise(self, day: str, amount: str, pay_by: str) -> Case:
        by = at(pay_by).date()
        return self.add(
            PromiseMade(
                at=at(day, 11),
                operator="op-1",
                reason="on the phone",
                amount=Decimal(amount),
                pay_by=by,
                hold_until=datetime.combine(by + timedelta(days=3), datetime.min.time(), UTC),
            )
        )

    def close(self, day: str, reason: str, hour: int = 12, **fields: Any) -> Case:
        return self.add(CaseClosed(at=at(day, hour), reason=reason, **fields))  # type: ignore[arg-type]


def story() -> list[Case]:
    a1 = Case(
        "A1",
        "03-02",
        1,
        {"principal": "900.00", "interest": "60.00", "fees": "40.00"},
        arm="champion",
    )
    a1.stage("03-02", 0).contact("03-02", "sms", "sent").contact("03-04", "call", "answered")
    a1.promise("03-04", "1000.00", "03-10").pay("03-09", "1000.00").close("03-09", "paid")

    a2 = Case("A2", "03-02", 1, {"principal": "500.00"}, arm="champion")
    a2.stage("03-02", 0).contact("03-02", "sms", "sent").contact("03-04", "call", "no_answer")
    a2.contact("03-05", "call", "answered").promise("03-05", "200.00", "03-08")
    a2.add(PromiseEnded(at=at("03-11"), kept=False, paid=Decimal(0)))
    a2.stage("03-22", 1).pay("03-25", "100.00").pay("04-02", "400.00").close("04-02", "paid")

    a3 = Case("A3", "03-10", 20, {"principal": "1800.00", "penalty": "200.00"}, arm="champion")
    a3.stage("03-10", 1).contact("03-10", "sms", "sent").contact("03-11", "call", "busy")
    a3.contact("03-13", "call", "wrong_number").contact("03-15", "call", "connected")
    a3.add(
        SettlementAgreed(
            at=at("03-15", 11),
            operator="op-1",
            reason="hardship",
            amount=Decimal("1500.00"),
            pay_by=date(2020, 3, 20),
            deadline=at("03-21", 0),
            waiver=Decimal("500.00"),
            supervisor="sup-1",
        )
    )
    a3.pay("03-18", "1500.00").close("03-18", "settled", waived=Decimal("500.00"))

    a4 = Case("A4", "03-03", 80, {"principal": "800.00"}, arm="champion")
    a4.stage("03-03", 2).contact("03-03", "sms", "sent").contact("03-04", "call", "no_answer")
    a4.add(
        ContactSkipped(
            at=at("03-05", 10),
            rule="call_attempts_per_7_days",
            channel="call",
            stage="field_visit",
            action_index=2,
            occurrence=1,
        )
    )
    a4.add(
        ContactDeferred(
            at=at("03-06", 23),
            rule="contact_window",
            until=at("03-07", 0),
            channel="sms",
            stage="field_visit",
            action_index=0,
            occurrence=1,
        )
    )
    a4.raw("contact_withdrawn", "03-07", channel="call", stage="field_visit", reason="hold")
    a4.stage("03-13", 3)
    a4.add(
        HandedToLegal(
            at=at("03-13", 9),
            stage="legal",
            action_index=0,
            idempotency_key=f"case-{a4.loan_id}:legal",
            provider_ref="legal-1",
        )
    )
    a4.close("03-13", "transferred_to_legal", hour=10)

    b1 = Case("B1", "03-02", 1, {"principal": "1000.00"}, policy=CHALLENGER, arm="challenger")
    b1.stage("03-02", 0).contact("03-02", "sms", "sent").contact("03-03", "call", "answered")
    b1.pay("03-05", "400.00").pay("03-06", "650.00", overpaid="50.00").close("03-06", "paid")

    b2 = Case("B2", "03-05", 1, {"principal": "600.00"}, policy=CHALLENGER, arm="challenger")
    b2.stage("03-05", 0).contact("03-07", "call", "answered").promise("03-07", "600.00", "03-12")
    b2.pay("03-10", "300.00").pay("03-12", "300.00").close("03-12", "paid")

    b3 = Case("B3", "03-04", 1, {"principal": "400.00"}, policy=CHALLENGER, arm="challenger")
    # B3's second call is a collector's (`agent_call`): a call all the same.
    b3.stage("03-04", 0).contact("03-06", "call", "no_answer")
    b3.contact("03-13", "agent_call", "answered")
    b3.promise("03-13", "200.00", "03-16").pay("03-15", "200.00")
    b3.add(PromiseKept(at=at("03-15", 13), paid=Decimal("200.00")))
    b3.add(PromiseEnded(at=at("03-17"), kept=True, paid=Decimal("200.00")))
    b3.stage("03-20", 1)

    b4 = Case("B4", "03-20", 1, {"principal": "1000.00"}, policy=CHALLENGER, arm="challenger")
    b4.stage("03-20", 0).contact("03-20", "sms", "sent")
    b4.close("03-25", "written_off", operator="op-1", note="uncollectable")

    n1 = Case("N1", "03-08", 1, {"principal": "300.00"})
    n1.stage("03-08", 0).pay("03-09", "300.00").close("03-09", "paid")

    n2 = Case("N2", "03-09", 1, {"principal": "100.00"}, currency="USD")
    n2.stage("03-09", 0).contact("03-09", "sms", "sent")

    o1 = Case("O1", "02-25", 1, {"principal": "700.00"}, arm="champion")
    o1.stage("02-25", 0).contact("03-02", "call", "answered").pay("03-03", "700.00")
    o1.close("03-03", "paid")

    o2 = Case("O2", "04-01", 1, {"principal": "700.00"}, arm="challenger", hour=0)
    o2.stage("04-01", 0).pay("04-01", "700.00").close("04-01", "paid")
    return [a1, a2, a3, a4, b1, b2, b3, b4, n1, n2, o1, o2]


def rows() -> list[dict[str, Any]]:
    """The audit rows, without hashes (the loader chains them)."""
    found = []
    for case in story():
        case_id = f"case-{case.loan_id}"
        for seq, payload in enumerate(case.rows, start=1):
            found.append(
                {
                    "case_id": case_id,
                    "seq": seq,
                    "event_type": payload["type"],
                    "occurred_at": payload["at"],
                    "actor": payload.get("actor", "system"),
                    "workflow_id": case_id,
                    "run_id": f"run-{case.loan_id}",
                    "payload": payload,
                }
            )
    return found


def main() -> None:
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(rows(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
