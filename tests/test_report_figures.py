"""`dunning report`'s figures on the committed audit log of tests/fixtures/report_audit.json
(the story is told in tests/make_report_fixture.py), one test per figure. Every
expected value is worked out by hand from that story; the arithmetic is in the
comments. Ages are policy days (the default policy: one day is 24 hours); cases open
at 08:00 UTC and the period ends on 04-01 00:00.

The log holds every kind of row the report reads, one kind it must ignore
(`contact_withdrawn`), a case opened before the period and one opened at its end.
"""

from __future__ import annotations

import math
from decimal import Decimal

import asyncpg
import pytest
from scipy import stats as scipy_stats

from dunning.report.model import GroupFigures, Report
from dunning.report.period import parse_period
from dunning.report.query import effectiveness
from tests.report_fixture import PERIOD, load_report_fixture


@pytest.fixture(scope="module")
async def report(pool: asyncpg.Pool) -> Report:
    await load_report_fixture(pool)
    return await effectiveness(pool, parse_period(*PERIOD))


def group(
    report: Report, arm: str, currency: str = "CNY", strategy: str | None = "retail"
) -> GroupFigures:
    [found] = [
        g
        for g in report.groups
        if g.arm == arm and g.currency == currency and g.strategy == strategy
    ]
    return found


def champion(report: Report) -> GroupFigures:
    return group(report, "champion")


def challenger(report: Report) -> GroupFigures:
    return group(report, "challenger")


def test_groups_are_policy_arm_segment_and_currency(report: Report) -> None:
    keys = [
        (g.strategy, g.experiment, g.segment, g.arm, g.policy, g.currency) for g in report.groups
    ]
    assert keys == [
        (None, None, "all", "champion", "default@1", "CNY"),  # N1: no strategy
        (None, None, "all", "champion", "default@1", "USD"),  # N2: another currency
        ("retail", "exp-q1", "prime", "challenger", "default@2", "CNY"),
        ("retail", "exp-q1", "prime", "champion", "default@1", "CNY"),
    ]


def test_cases_opened_only_in_the_period(report: Report) -> None:
    # O1 opened 02-25, O2 at 04-01 00:00 (the end is excluded): neither counts.
    assert sum(g.cases_opened for g in report.groups) == 10
    assert champion(report).cases_opened == 4
    assert challenger(report).cases_opened == 4


def test_cases_closed_by_reason(report: Report) -> None:
    # A2 pays the rest and closes on 04-02, after the period: still open here.
    assert champion(report).cases_closed == {"paid": 1, "settled": 1, "transferred_to_legal": 1}
    assert champion(report).cases_open == 1
    assert challenger(report).cases_closed == {"paid": 2, "written_off": 1}
    assert challenger(report).cases_open == 1
    assert group(report, "champion", strategy=None).cases_closed == {"paid": 1}


def test_amount_at_opening(report: Report) -> None:
    # A1 900 + 60 + 40, A2 500, A3 1800 + 200 penalty, A4 800.
    assert champion(report).amount_at_opening == Decimal("4300.00")
    assert challenger(report).amount_at_opening == Decimal("3000.00")
    assert group(report, "champion", "USD", None).amount_at_opening == Decimal("100.00")


def test_amount_recovered(report: Report) -> None:
    # Champion: A1 1000 + A2 100 (not its 400 of 04-02) + A3 1500 (settled) + A4 0.
    assert champion(report).amount_recovered == Decimal("2600.00")
    # Challenger: B1 400 + 650 less 50 overpaid, B2 300 + 300, B3 200, B4 0.
    assert challenger(report).amount_recovered == Decimal("1800.00")


def test_recovery_rate(report: Report) -> None:
    assert champion(report).recovery_rate == pytest.approx(2600 / 4300)
    assert challenger(report).recovery_rate == pytest.approx(0.6)
    assert group(report, "champion", strategy=None).recovery_rate == pytest.approx(1.0)
    assert group(report, "champion", "USD", None).recovery_rate == 0.0


def test_cure_rate(report: Report) -> None:
    # Cured = closed as paid before the end: A1 of 4 (A3 settled is not a cure); B1, B2 of 4.
    assert (champion(report).cured, champion(report).cure_rate) == (1, 0.25)
    assert (challenger(report).cured, challenger(report).cure_rate) == (2, 0.5)


def test_days_to_cure(report: Report) -> None:
    # A1 03-02 08:00 -> 03-09 12:00 = 7 days 4 hours; B1 4 d 4 h; B2 03-05 -> 03-12 12:00.
    assert champion(report).days_to_cure_mean == pytest.approx(7 + 4 / 24)
    assert challenger(report).days_to_cure_mean == pytest.approx((4 + 7 + 8 / 24) / 2)
    assert challenger(report).days_to_cure_median == pytest.approx((4 + 7 + 8 / 24) / 2)
    assert group(report, "champion", strategy=None).days_to_cure_median == pytest.approx(1 + 4 / 24)
    assert group(report, "champion", "USD", None).days_to_cure_mean is None


def test_promise_kept_rate(report: Report) -> None:
    # A1's promise ends with the case paid in full (kept), A2's is broken: 1 of 2.
    # B2 pays in full while its promise holds, B3's promise is kept: 2 of 2.
    c, x = champion(report), challenger(report)
    assert (c.promises_made, c.promises_kept, c.promises_broken) == (2, 1, 1)
    assert c.promise_kept_rate == 0.5
    assert (x.promises_made, x.promises_kept, x.promises_broken) == (2, 2, 0)
    assert x.promise_kept_rate == 1.0


def test_right_party_contact_rate(report: Report) -> None:
    # Champion calls: A1 answered; A2 no_answer, answered; A3 busy, wrong_number,
    # connected; A4 no_answer (its skipped call and withdrawn row are no calls): 3 of 7.
    assert (champion(report).calls, champion(report).right_party_contacts) == (7, 3)
    assert champion(report).right_party_contact_rate == pytest.approx(3 / 7)
    # Challenger: B1 answered, B2 answered, B3 no_answer then answered: 3 of 4.
    assert challenger(report).right_party_contact_rate == 0.75


def test_contacts_per_recovered_unit(report: Report) -> None:
    # Contacts are attempts handed to a provider: A1 2, A2 3, A3 4, A4 2 = 11 (A4's
    # skipped call, deferred SMS and withdrawn row are not); 11 per 2600 recovered.
    c = champion(report)
    assert c.contacts == 11
    assert c.contacts_by_channel == {"call": 7, "sms": 4}
    assert c.contacts_per_1000_recovered == pytest.approx(11 / 2600 * 1000)
    # B1 2, B2 1, B3 2, B4 1 = 6 per 1800.
    assert challenger(report).contacts_per_1000_recovered == pytest.approx(6 / 1800 * 1000)
    assert group(report, "champion", "USD", None).contacts_per_1000_recovered is None


def test_stage_figures(report: Report) -> None:
    rows = {
        s.stage: (
            s.reached,
            s.entered,
            s.contacts,
            s.calls,
            s.right_party_contacts,
            s.recovered,
            s.cured,
        )
        for s in champion(report).stages
    }
    assert list(rows) == ["reminder", "negotiation", "field_visit", "legal"]
    # reminder: all 4 reached it or a later stage, A1 and A2 were in it; A1's 2 and A2's
    # 3 contacts, 3 calls of which 2 answered; A1's 1000, A1 cured there.
    assert rows["reminder"] == (4, 2, 5, 3, 2, Decimal("1000.00"), 1)
    # negotiation: A2 (from 03-22), A3 (opened there), A4 (past it); A3's 4 contacts,
    # 3 calls, 1 connected; A2's 100 and A3's 1500.
    assert rows["negotiation"] == (3, 2, 4, 3, 1, Decimal("1600.00"), 0)
    assert rows["field_visit"] == (1, 1, 2, 1, 0, Decimal("0"), 0)
    assert rows["legal"] == (1, 1, 0, 0, 0, Decimal("0"), 0)
    reminder = champion(report).stages[0]
    assert (reminder.promises_made, reminder.promises_kept, reminder.promises_broken) == (2, 1, 1)


def test_stage_funnel(report: Report) -> None:
    assert [s.reached for s in champion(report).stages] == [4, 3, 1, 1]
    assert [s.reached for s in challenger(report).stages] == [4, 1, 0, 0]  # B3 negotiates


def test_roll_rates_week_over_week(report: Report) -> None:
    # Each case's state at ages 0, 7, 14, ... days against 7 days later, for weeks
    # ended before 04-01 while the case was open at the week's start:
    # A1 r->r, r->paid (paid at 7 d 4 h); A2 r->r, r->r, r->negotiation (day 20),
    # n->n; A3 n->n, n->settled (day 8); A4 f->f, f->transferred (day 10).
    roll = champion(report).roll_rates
    assert roll.to_states == [
        "reminder",
        "negotiation",
        "field_visit",
        "legal",
        "paid",
        "settled",
        "transferred_to_legal",
    ]
    assert roll.closed_states == ["paid", "settled", "transferred_to_legal"]
    assert roll.counts == [
        [3, 1, 0, 0, 1, 0, 0],
        [0, 2, 0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    assert roll.rates[0] == [0.6, 0.2, 0.0, 0.0, 0.2, 0.0, 0.0]
    assert roll.rates[1][1] == pytest.approx(2 / 3)
    assert roll.rates[3] == [None] * 7
    # B1 r->paid; B2 r->r, r->paid; B3 r->r, r->r, r->n (day 16); B4 r->written_off.
    assert challenger(report).roll_rates.counts[0] == [3, 1, 0, 0, 2, 1]


def test_recovery_curve(report: Report) -> None:
    # Observed for 29, 29, 21 (A3 opened 03-10) and 28 (A4) whole days; payments on
    # day 7 (A1 1000), 8 (A3 1500), 23 (A2 100). A case leaves the curve after the
    # last day it was observed, with what it owed and paid.
    curve = {p.day: (p.cases, p.owed, p.recovered) for p in champion(report).recovery_curve}
    assert sorted(curve) == list(range(30))
    assert curve[0] == (4, Decimal("4300.00"), Decimal("0"))
    assert curve[7] == (4, Decimal("4300.00"), Decimal("1000.00"))
    assert curve[8] == (4, Decimal("4300.00"), Decimal("2500.00"))
    assert curve[21] == (4, Decimal("4300.00"), Decimal("2500.00"))
    assert curve[22] == (3, Decimal("2300.00"), Decimal("1000.00"))
    assert curve[23] == (3, Decimal("2300.00"), Decimal("1100.00"))
    assert curve[29] == (2, Decimal("1500.00"), Decimal("1100.00"))
    assert champion(report).recovery_curve[29].recovery_rate == pytest.approx(1100 / 1500)


# Per case, champion A1..A4 and challenger B1..B4: what each owed and recovered,
# its contacts, and the days to cure of the cured ones.
OWED = ([1000, 500, 2000, 800], [1000, 600, 400, 1000])
RECOVERED = ([1000, 100, 1500, 0], [1000, 600, 200, 0])
CONTACTS = ([2, 3, 4, 2], [2, 1, 2, 1])


def comparison(report: Report) -> dict[str, object]:
    [found] = report.comparisons
    assert (found.champion_policy, found.challenger_policy) == ("default@1", "default@2")
    return {m.metric: m for m in found.metrics}


def test_champion_against_challenger_rates(report: Report) -> None:
    metric = comparison(report)["cure_rate"]
    # p1 = 1/4, p2 = 2/4; interval: unpooled se = sqrt(.25*.75/4 + .5*.5/4);
    # p-value: pooled p = 3/8, se0 = sqrt(3/8 * 5/8 * (1/4 + 1/4)).
    se = math.sqrt(0.25 * 0.75 / 4 + 0.25 / 4)
    se0 = math.sqrt(3 / 8 * 5 / 8 * 0.5)
    z = 1.959963984540054
    assert metric.test == "two-proportion z-test"
    assert metric.difference == pytest.approx(0.25)
    assert (metric.ci_low, metric.ci_high) == pytest.approx((0.25 - z * se, 0.25 + z * se))
    assert metric.p_value == pytest.approx(math.erfc(0.25 / se0 / math.sqrt(2)))
    rpc = comparison(report)["right_party_contact_rate"]
    assert (rpc.n_champion, rpc.n_challenger) == (7, 4)  # over calls
    assert rpc.difference == pytest.approx(0.75 - 3 / 7)


def test_champion_against_challenger_amounts(report: Report) -> None:
    metric = comparison(report)["amount_recovered_per_case"]
    expected = scipy_stats.ttest_ind(RECOVERED[1], RECOVERED[0], equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert metric.test == "Welch's t-test"
    assert metric.difference == pytest.approx(450 - 650)
    assert metric.p_value == pytest.approx(expected.pvalue)
    assert (metric.ci_low, metric.ci_high) == pytest.approx((interval.low, interval.high))
    # Champion cured one case only: no variance, no interval.
    days = comparison(report)["days_to_cure"]
    assert (days.n_champion, days.ci_low, days.p_value) == (1, None, None)


def test_champion_against_challenger_recovery_rate(report: Report) -> None:
    # Ratio estimator R = sum(recovered) / sum(owed); delta-method variance
    # n / (n - 1) * sum((y - R x)^2) / sum(x)^2, per arm; z interval of the difference.
    def ratio_and_variance(y: list[int], x: list[int]) -> tuple[float, float]:
        r = sum(y) / sum(x)
        n = len(y)
        return r, n / (n - 1) * sum((yi - r * xi) ** 2 for yi, xi in zip(y, x, strict=True)) / sum(
            x
        ) ** 2

    r1, v1 = ratio_and_variance(RECOVERED[0], OWED[0])
    r2, v2 = ratio_and_variance(RECOVERED[1], OWED[1])
    se = math.sqrt(v1 + v2)
    metric = comparison(report)["recovery_rate"]
    assert metric.test == "difference of ratios, delta-method z-test"
    assert metric.difference == pytest.approx(r2 - r1)
    assert (metric.ci_low, metric.ci_high) == pytest.approx(
        (r2 - r1 - 1.959963984540054 * se, r2 - r1 + 1.959963984540054 * se)
    )
    assert metric.p_value == pytest.approx(math.erfc(abs(r2 - r1) / se / math.sqrt(2)))
    c1, cv1 = ratio_and_variance(CONTACTS[0], RECOVERED[0])
    per_1000 = comparison(report)["contacts_per_1000_recovered"]
    assert per_1000.champion == pytest.approx(c1 * 1000)
    assert per_1000.ci_high - per_1000.ci_low == pytest.approx(
        2
        * 1.959963984540054
        * 1000
        * math.sqrt(cv1 + ratio_and_variance(CONTACTS[1], RECOVERED[1])[1])
    )


def test_no_comparison_without_an_experiment(report: Report) -> None:
    assert len(report.comparisons) == 1  # the cases without a strategy have one arm


def test_the_period_ends_where_it_says(pool: asyncpg.Pool, report: Report) -> None:
    assert report.period_from.isoformat() == "2020-03-01T00:00:00+00:00"
    assert report.period_to.isoformat() == "2020-04-01T00:00:00+00:00"


async def test_an_earlier_end_sees_less(pool: asyncpg.Pool, report: Report) -> None:
    # To 03-09 00:00: A1 is not paid yet (03-09 12:00), A3 and later are not opened.
    early = await effectiveness(pool, parse_period("2020-03-01", "2020-03-09T00:00"))
    c = group(early, "champion")
    assert (c.cases_opened, c.amount_recovered, c.cured, c.cases_closed) == (3, Decimal(0), 0, {})
