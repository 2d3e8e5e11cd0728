"""Case files as backends send them: JSON (one case or a list) or CSV with flat
columns, read into rows not yet validated; and validation errors described by field
without echoing input values (they may be personal data). Shared by `dunning open`,
the starter and `dunning simulate`."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.case import Borrower

_INNER_FIELD = re.compile(r"(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")


def describe_errors(exc: ValidationError) -> str:
    """`field.path: problem; ...`, with no input values echoed (they may be personal data)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(row)"
        message = err["msg"].removeprefix("Value error, ")
        # Cross-field validators name their field in the message: fold it into the path.
        inner = _INNER_FIELD.match(message)
        if inner:
            field = f"{field}.{inner['field']}" if field != "(row)" else inner["field"]
            message = message[inner.end() :]
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


# --- reading files -------------------------------------------------------------------

# The borrower's columns are its fields (`schemas.case.Borrower`) by their own names,
# but for the two renamed to tell them from the loan's; emergency contacts have no flat
# form (a JSON file holds them). A field added to the borrower is a column at once.
CSV_BORROWER = {"borrower_id": "id", "borrower_name": "name"} | {
    name: name for name in Borrower.model_fields if name not in ("id", "name", "emergency_contacts")
}
CSV_LOAN = {
    "loan_id": "id",
    "currency": "currency",
    "principal": "principal",
    "interest": "interest",
    "fees": "fees",
    "penalty": "penalty",
    "due_date": "due_date",
    "days_past_due": "days_past_due",
    "product": "product",
}


def _csv_row(row: dict[str, str | None]) -> dict[str, Any]:
    """A flat CSV row to the nested case shape; `phones` are separated by `;` or `|`."""
    borrower: dict[str, Any] = {}
    loan: dict[str, Any] = {}
    case: dict[str, Any] = {"borrower": borrower, "loan": loan}
    for column, value in row.items():
        if column is None:
            raise ValueError("row has more cells than the header")
        if value is None or value == "":
            continue
        column = column.strip()
        if column in CSV_BORROWER:
            key = CSV_BORROWER[column]
            borrower[key] = (
                [p for p in value.replace("|", ";").split(";") if p.strip()]
                if key == "phones"
                else value
            )
        elif column in CSV_LOAN:
            loan[CSV_LOAN[column]] = value
        elif column == "policy":
            case["policy"] = value
        else:
            case[column] = value  # rejected by validation as an unknown field
    return case


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .json (one object or a list) or .csv file, not yet validated."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return [_csv_row(row) for row in csv.DictReader(io.StringIO(text))]
    data = json.loads(text)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise ValueError("a JSON file must hold one case object or a list of them")
