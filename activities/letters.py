"""Letters: a rendered letter template made into the PDF a print-and-mail house prints.

fpdf2 draws it (pure Python; nothing fetched at run time). CJK text needs a font with
the glyphs, taken from the machine: the first of `FONT_CANDIDATES` that exists (Debian's
fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk). Without one, a letter that
only holds Latin-1 text is drawn in the PDF core font Helvetica; any other letter is
refused for good, naming the fonts looked for, rather than printed with missing glyphs.

The PDF is the same bytes for the same request (its creation date is the letter's date,
its file id derived from the content), so a retried attempt hands the partner the very
document whose SHA-256 the case records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from temporalio.exceptions import ApplicationError

from activities.providers.base import Content
from schemas.activity_io import OutboundRequest

MEDIA_TYPE = "application/pdf"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)
FAMILY = "letter"
MARGIN_MM = 20
SIZE_PT = 11
LINE_MM = 6


@lru_cache(maxsize=1)
def letter_font() -> Path | None:
    """The Unicode font letters are drawn in, or None: none on this machine."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    return None


def render_pdf(text: str, request: OutboundRequest) -> Content:
    """The letter `text` (one paragraph per line, blank lines kept) as a PDF on A4."""
    font = letter_font()
    if font is None and not _latin1(text):
        looked = ", ".join(str(p) for p in FONT_CANDIDATES)
        raise ApplicationError(
            f"letter {request.template!r} ({request.language}) needs a Unicode font and "
            f"none was found (looked for {looked}; install fonts-wqy-microhei)",
            type="NoLetterFont",
            non_retryable=True,
        )
    pdf = FPDF(format="A4")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(True, margin=MARGIN_MM)
    pdf.set_creation_date(_dated(request))
    pdf.set_title(f"{request.case_id} {request.template}")
    pdf.set_lang(request.language)
    if font is not None:
        pdf.add_font(FAMILY, "", str(font))
        pdf.set_font(FAMILY, size=SIZE_PT)
    else:
        pdf.set_font("Helvetica", size=SIZE_PT)
    pdf.add_page()
    for line in text.splitlines():
        if line.strip():
            pdf.multi_cell(0, LINE_MM, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.ln(LINE_MM / 2)
    return Content(text=text, document=bytes(pdf.output()), media_type=MEDIA_TYPE)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _dated(request: OutboundRequest) -> datetime:
    """The letter's own date as the PDF's creation date (the same on every retry)."""
    try:
        day = date.fromisoformat(request.variables.get("date", ""))
    except ValueError:
        day = date(2000, 1, 1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
