# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The report's words, in `en` and `zh-CN` (docs/domain.md's terms in brackets), for
the terminal tables and the HTML page. JSON and CSV keep the field names."""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (en, zh-CN)
    "title": ("Collection effectiveness", "催收效果报告"),
    "period": (
        "Cases opened from {start} to {end} (UTC), followed to the end",
        "{start} 至 {end}（UTC）期间立案的案件，统计至期末",
    ),
    "generated": (
        "Generated {at} from the audit log; definitions in docs/reports.md",
        "{at} 根据审计日志生成；指标定义见 docs/reports.md",
    ),
    "no_cases": ("No case was opened in this period.", "本期间没有立案的案件。"),
    "cases": ("Cases", "案件"),
    "effectiveness": ("Effectiveness", "效果"),
    "stages": ("Stages", "阶段"),
    "comparisons": ("Champion against challenger", "冠军策略与挑战者策略对比"),
    "group": ("group", "分组"),
    "strategy": ("strategy", "策略"),
    "no_strategy": ("no strategy", "无策略"),
    "experiment": ("experiment", "实验"),
    "segment": ("segment", "客群"),
    "arm": ("arm", "组别"),
    "policy": ("policy", "催收方案"),
    "currency": ("currency", "币种"),
    "stage": ("stage", "阶段"),
    "opened": ("opened", "立案"),
    "open": ("open", "未结案"),
    "closed": ("closed", "结案"),
    "paid": ("paid", "还清"),
    "settled": ("settled", "和解"),
    "transferred_to_legal": ("to legal", "转法务"),
    "written_off": ("written off", "核销"),
    "cancelled": ("cancelled", "撤销"),
    "amount_at_opening": ("owed at opening", "立案金额"),
    "amount_recovered": ("recovered", "回收金额"),
    "recovery_rate": ("recovery rate", "回收率"),
    "cure_rate": ("cure rate", "治愈率"),
    "promise_kept_rate": ("promise-kept rate", "承诺履约率"),
    "right_party_contact_rate": ("right-party contact rate", "本人接通率"),
    "contacts_per_1000_recovered": ("contacts per 1,000 recovered", "每回收千元接触次数"),
    "contacts": ("contacts", "接触次数"),
    "days_to_cure": ("days to cure", "治愈天数"),
    "days_to_cure_mean": ("days to cure (mean)", "治愈天数（均值）"),
    "days_to_cure_median": ("days to cure (median)", "治愈天数（中位数）"),
    "amount_recovered_per_case": ("recovered per case", "户均回收金额"),
    "reached": ("reached", "到达"),
    "entered": ("entered", "进入"),
    "cured": ("cured", "治愈"),
    "promises": ("promises kept / ended", "承诺（履约/到期）"),
    "roll_rates": ("Roll rates, week over week", "周迁徙率"),
    "roll_from": ("stage at the start of a week", "周初阶段"),
    "roll_to": ("a week later", "一周后"),
    "case_weeks": ("case-weeks counted", "统计的案件周数"),
    "recovery_curve": ("Recovery curve by arm", "各组回收曲线"),
    "days_since_opening": ("days since opening", "立案后天数"),
    "share_recovered": ("share of the amount at opening recovered", "已回收占立案金额比例"),
    "funnel": ("Stage funnel", "阶段漏斗"),
    "share_of_cases": ("share of cases opened", "占立案案件比例"),
    "metric": ("figure", "指标"),
    "champion": ("champion", "冠军"),
    "challenger": ("challenger", "挑战者"),
    "difference": ("difference", "差值"),
    "interval": ("{level:.0%} interval", "{level:.0%} 置信区间"),
    "p_value": ("p-value", "p 值"),
    "test": ("test", "检验方法"),
    "none": ("-", "-"),
    "figures_table": ("The figures", "指标明细"),
}


def text(key: str, language: Language = "en", **values: object) -> str:
    """The words for `key` (the key itself when it has none, e.g. a new closing reason)."""
    pair = _TEXT.get(key)
    if pair is None:
        return key.replace("_", " ")
    chosen = pair[0] if language == "en" else pair[1]
    return chosen.format(**values) if values else chosen
