"""Free text typed by people (names, addresses, reasons): printable, and not empty in
disguise. Control characters break logs, CSV exports and terminals; a name made only
of zero-width or other invisible characters is as good as missing."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Zs"}


def check_human_text(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    if all(unicodedata.category(ch) in INVISIBLE for ch in value):
        raise ValueError("must contain visible characters")
    return value


HumanText = Annotated[str, AfterValidator(check_human_text)]
