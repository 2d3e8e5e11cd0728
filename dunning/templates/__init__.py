"""Message templates: reviewed data files per language, rendered in a Jinja2 sandbox.

Templates are the only text that reaches a borrower, so they live in files that go
through review, never in code or free text, and cannot reach Python internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).parent


class TemplateError(LookupError):
    pass


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def render(name: str, language: str, variables: Mapping[str, object]) -> str:
    """Render template `name` in `language`; an unknown variable is an error, not a blank.

    Values are strings, or lists of string tuples for tables (a plan's schedule).
    """
    path = TEMPLATE_DIR / language / f"{name}.j2"
    if not path.is_file():
        raise TemplateError(f"no template {name!r} for language {language!r}")
    template = _environment().get_template(f"{language}/{name}.j2")
    return template.render(**variables).strip()


def available(language: str) -> set[str]:
    return {p.stem for p in (TEMPLATE_DIR / language).glob("*.j2")}
