"""One self-contained HTML page of charts and tables: inline SVG and inline CSS, no
script, nothing fetched when it is viewed (its Content-Security-Policy forbids it).
The report and the simulator fill it with `Section`s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jinja2 import Environment, PackageLoader, select_autoescape

_ENV = Environment(
    loader=PackageLoader("dunning.charts", ""),
    autoescape=select_autoescape(["j2", "html"], default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Chart:
    svg: str  # from dunning.charts.svg
    caption: str = ""


@dataclass(frozen=True)
class TableData:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool] = ()  # per column: right-aligned

    def aligned(self) -> TableData:
        numeric = list(self.numeric) + [False] * (len(self.columns) - len(self.numeric))
        return TableData(self.title, self.columns, self.rows, numeric)


@dataclass(frozen=True)
class Section:
    title: str
    charts: Sequence[Chart] = ()
    tables: Sequence[TableData] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def html_page(
    title: str,
    sections: Sequence[Section],
    *,
    lang: str = "en",
    subtitle: Sequence[str] = (),
    footer: str = "",
) -> str:
    fixed = [Section(s.title, s.charts, [t.aligned() for t in s.tables], s.notes) for s in sections]
    return _ENV.get_template("page.html.j2").render(
        title=title, sections=fixed, lang=lang, subtitle=subtitle, footer=footer
    )
