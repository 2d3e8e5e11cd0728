"""The worker: runs `LoanCollection` workflows and their activities.

`python worker.py` or `dunning worker`. Scale out by running more of them on the
same task queue; Temporal spreads the cases. The runtime is `dunning.runtime`.
"""

from __future__ import annotations

import asyncio

from dunning.cli.common import exit_with
from dunning.logging_setup import configure
from dunning.runtime import build_worker, running_worker, serve
from dunning.settings import get_settings

__all__ = ["build_worker", "main", "running_worker"]


def main() -> None:
    def body() -> int:
        settings = get_settings()
        configure(settings.log_format, settings.log_level)
        asyncio.run(serve(settings))
        return 0

    # Exits without interpreter teardown: see dunning.cli.main.main.
    exit_with(body)


if __name__ == "__main__":
    main()
