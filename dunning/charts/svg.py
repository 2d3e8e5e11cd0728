"""Charts as inline SVG, from plain series and matrices: what the report's page (and
the simulator's) draws. matplotlib renders them at build time; the page needs no
script, no network and no font files: text stays text (`svg.fonttype = none`), so
the viewer's own fonts draw it, Chinese included.

Every function returns one `<svg>` element (no XML prolog) with a `chart` class and
its kind in `data-chart`, so pages and tests can find it. The output is the same
for the same input (no date, ids salted by the chart's kind and title).
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

matplotlib.use("svg")  # no GUI backend; the Figure API below needs none

# Champion first, then challengers: colours that stay apart for colour-blind readers
# (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC"]
_LOCK = threading.Lock()  # rcParams are process-wide; render one chart at a time


def _render(figure: Figure, kind: str, title: str) -> str:
    salt = hashlib.sha256(f"{kind}:{title}".encode()).hexdigest()[:12]
    buffer = io.StringIO()
    with (
        matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    return svg.replace("<svg ", f'<svg class="chart" data-chart="{kind}" role="img" ', 1)


def _figure(width: float = 5.4, height: float = 3.3) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _style(ax: object) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _fonts() -> AbstractContextManager[None]:
    return matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": FONTS})


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    percent: bool = False,
) -> str:
    """One line per named series of (x, y) points; `percent`: y is a share (0..1)."""
    with _LOCK, _fonts():
        figure = _figure()
        ax = figure.add_subplot()
        for index, (name, points) in enumerate(series.items()):
            xs = [x for x, _ in points]
            ys = [y for _, y in points]
            ax.plot(xs, ys, label=name, color=PALETTE[index % len(PALETTE)], linewidth=2)
        ax.set_title(title, loc="left", fontsize=12)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        _style(ax)
        if series:
            ax.legend(frameon=False, loc="lower right")
        return _render(figure, "line", title)


def heat_map(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    percent: bool = True,
) -> str:
    """A matrix of shares (None: no data), each cell coloured and labelled."""
    with _LOCK, _fonts():
        figure = _figure(width=max(5.0, 1.0 + 0.95 * len(columns)), height=1.4 + 0.5 * len(rows))
        ax = figure.add_subplot()
        cells = [[float("nan") if v is None else v for v in line] for line in values]
        colours = matplotlib.colormaps["Blues"].with_extremes(bad="#f4f4f4")
        ax.pcolormesh(  # one vector cell per value, outlined
            cells, cmap=colours, vmin=0, vmax=1 if percent else None,
            edgecolors="white", linewidth=1.5,
        )  # fmt: skip
        ax.set_xticks([c + 0.5 for c in range(len(columns))], labels=list(columns))
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_yticks([r + 0.5 for r in range(len(rows))], labels=list(rows))
        ax.invert_yaxis()
        for r, line in enumerate(values):
            for c, value in enumerate(line):
                if value is None:
                    continue
                label = f"{value:.0%}" if percent else f"{value:,.2f}"
                ax.text(
                    c + 0.5, r + 0.5, label, ha="center", va="center", fontsize=9,
                    color="white" if value > 0.55 else "#222222",
                )  # fmt: skip
        ax.set_title(title, loc="left", fontsize=12)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        return _render(figure, "heat_map", title)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    value_label: str,
    percent: bool = False,
    horizontal: bool = False,
    kind: str = "bars",
    integer: bool = False,
) -> str:
    """Grouped bars: one bar per series in each category, values written at the bars;
    `integer`: counts, ticks on whole numbers only."""
    with _LOCK, _fonts():
        count = max(1, len(series))
        size = max(1, len(categories))
        if horizontal:
            figure = _figure(height=max(2.4, 0.9 + 0.45 * size * min(count, 3)))
        else:
            figure = _figure()
        ax = figure.add_subplot()
        width = 0.8 / count
        positions = list(range(len(categories)))
        for index, (name, values) in enumerate(series.items()):
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            colour = PALETTE[index % len(PALETTE)]
            if horizontal:
                bars = ax.barh(offsets, list(values), height=width, label=name, color=colour)
            else:
                bars = ax.bar(offsets, list(values), width=width, label=name, color=colour)
            labels = [f"{v:.0%}" if percent else f"{v:,.0f}" for v in values]
            ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
        formatter = (
            PercentFormatter(1.0, decimals=0)
            if percent
            else FuncFormatter(lambda v, _: f"{v:,.0f}")
        )
        if integer:
            (ax.xaxis if horizontal else ax.yaxis).set_major_locator(MaxNLocator(integer=True))
        if horizontal:
            ax.set_yticks(positions, labels=list(categories))
            ax.invert_yaxis()  # the first category on top, as a funnel reads
            ax.set_xlabel(value_label)
            ax.xaxis.set_major_formatter(formatter)
            if percent:
                ax.set_xlim(0, 1.12)
        else:
            ax.set_xticks(positions, labels=list(categories))
            ax.set_ylabel(value_label)
            ax.yaxis.set_major_formatter(formatter)
        ax.set_title(title, loc="left", fontsize=12)
        _style(ax)
        if series:
            ax.legend(frameon=False, loc="best")
        return _render(figure, kind, title)


def funnel(
    stages: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str, value_label: str
) -> str:
    """Stages top to bottom, one bar per series: the share of cases that reached each."""
    return bar_chart(
        stages, series, title=title, value_label=value_label, percent=True, horizontal=True,
        kind="funnel",
    )  # fmt: skip
