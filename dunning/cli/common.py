"""What every command shares: settings, async entry, clear failures."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from dunning.logging_setup import configure
from dunning.settings import Settings, get_settings

T = TypeVar("T")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one line per error, for scripts too


def settings() -> Settings:
    current = get_settings()
    configure(current.log_format, current.log_level)
    return current


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def field_errors(exc: ValidationError) -> str:
    from dunning.case_files import describe_errors

    return describe_errors(exc)


def exit_with(body: Callable[[], int]) -> None:
    """Run `body`, flush everything, and exit the process with its status at once."""
    code = 1
    try:
        code = body()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
