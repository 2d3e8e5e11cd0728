"""Open cases for backend services: one, or a batch from JSON or CSV.

`python starter.py FILE` or `dunning open FILE`; backends in Python call `open_case` /
`open_cases`. The opening itself is `dunning.opening`.
"""

from __future__ import annotations

import sys

from dunning.case_files import describe_errors, read_rows
from dunning.opening import (
    MAX_CONCURRENT_STARTS,
    RowResult,
    open_case,
    open_cases,
    opening_problems,
    search_attributes,
    workflow_input,
)
from schemas.case import CaseInput

__all__ = [
    "MAX_CONCURRENT_STARTS",
    "CaseInput",
    "RowResult",
    "describe_errors",
    "main",
    "open_case",
    "open_cases",
    "opening_problems",
    "read_rows",
    "search_attributes",
    "workflow_input",
]


def main() -> None:
    from dunning.cli.main import main as dunning

    sys.argv = [sys.argv[0], "open", *sys.argv[1:]]
    dunning()


if __name__ == "__main__":
    main()
