"""structlog for everything: JSON in production, readable in a terminal.

Standard-library loggers (Temporal's replay-safe `workflow.logger`, asyncpg) are
routed through the same processors, so every line has one shape. Fields passed as
`extra=` (case_id, workflow_id, stage) become top-level keys. Every line, whichever
logger wrote it, goes through `dunning.pii.mask_event` last: names, phones and
addresses are masked before anything is rendered.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from dunning.pii import mask_event

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# Temporal's workflow logger adds these to every record; we bind our own instead.
_TEMPORAL_NOISE = {"temporal_workflow", "temporal_activity"}


def _drop_temporal_noise(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key in _TEMPORAL_NOISE:
        event.pop(key, None)
    return event


def formatter(log_format: str = "console", colors: bool = False) -> logging.Formatter:
    """The formatter every handler uses: masked, rendered as JSON or for a console."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            _drop_temporal_noise,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_event,
            renderer,
        ],
    )


def configure(
    log_format: str = "console", level: str = "INFO", stream: TextIO | None = None
) -> None:
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format, colors=(stream or sys.stderr).isatty()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO (the webhook provider's URLs): one line per
    # message sent is the `outbound` line already; keep its warnings only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
