"""The report's HTML page in a real browser: Debian's chromium, headless, driven by
Playwright (never a browser Playwright downloads). The page made from the committed
audit log shows every plot drawn (data elements counted per chart, each with a size
on screen), asks the network for nothing, and its screenshot is saved in
docs/screenshots/ (README: "Reports").

Without chromium the test is skipped with the reason, except in CI (`CI` set), where
it fails: `.ci/run` installs chromium.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import asyncpg
import pytest

from dunning.report.labels import Language
from dunning.report.period import parse_period
from dunning.report.query import effectiveness
from dunning.report.render_html import report_page
from tests.report_fixture import PERIOD, load_report_fixture

SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# What each kind of chart draws for its data (matplotlib's SVG groups): the lines,
# the bars, the heat map's cells.
DATA = {
    "line": '[id^="line2d"] path[style*="stroke-width: 2"]',
    "funnel": '[id^="patch"] path',
    "heat_map": '[id^="QuadMesh"] path',
}


def chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        reason = "chromium not found (Debian: apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; in CI it must be there: .ci/run installs it")
        pytest.skip(reason)
    return found


@pytest.mark.parametrize("language", ["en", "zh-CN"])
async def test_the_page_shows_its_plots(
    pool: asyncpg.Pool, tmp_path: Path, language: Language
) -> None:
    executable = chromium()
    from playwright.async_api import async_playwright

    await load_report_fixture(pool)
    report = await effectiveness(pool, parse_period(*PERIOD))
    page_file = tmp_path / "report.html"
    page_file.write_text(report_page(report, language), encoding="utf-8")
    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(page_file.as_uri())
            charts = await page.eval_on_selector_all(
                "svg.chart",
                """(charts, data) => charts.map(chart => {
                    const box = chart.getBoundingClientRect();
                    const drawn = [...chart.querySelectorAll(data[chart.dataset.chart])]
                        .filter(e => e.getBBox().width > 0 || e.getBBox().height > 0);
                    return {kind: chart.dataset.chart, drawn: drawn.length,
                            width: box.width, height: box.height};
                })""",
                DATA,
            )
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / f"report-{language}.png"), full_page=True)
            title = await page.title()
        finally:
            await browser.close()
    assert requested == [page_file.as_uri()]  # nothing but the page itself
    assert title == ("Collection effectiveness" if language == "en" else "催收效果报告")
    kinds = [c["kind"] for c in charts]
    # Three sections (the experiment, the cases without a strategy in CNY and in USD):
    # a recovery curve and a funnel each, a heat map per arm with weeks counted.
    assert kinds.count("line") == 3 and kinds.count("funnel") == 3
    assert kinds.count("heat_map") == 4
    for chart in charts:
        assert chart["drawn"] > 0, chart
        assert chart["width"] > 200 and chart["height"] > 100, chart
    experiment = [c for c in charts if c["kind"] == "heat_map"][:2]
    # The champion's matrix: 3 stage rows with weeks x 7 states; the challenger's 1 x 6.
    assert sorted(c["drawn"] for c in experiment) == [6, 21]
