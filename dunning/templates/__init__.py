"""Message templates: reviewed data files per language, rendered in a Jinja2 sandbox.

Templates are the only text that reaches a borrower, so they live in files that go
through review, never in code or free text, and cannot reach Python internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).parent

# The variables a policy's templates are given are declared once, per kind of
# template, in `schemas.channels.TEMPLATE_VARIABLES`; `dunning.policies` refuses a
# template that uses anything else when its policy is checked or loaded.
# Every SMS carries an opt-out (docs/domain.md rule 5); `policy check` looks for it.
OPT_OUT_LINES = {"en": "Reply STOP to opt out", "zh-CN": "回复TD退订"}


def source(name: str, language: str) -> str:
    path = _find(name, language)
    if path is None:
        raise TemplateError(f"no template {name!r} for language {language!r}")
    return path.read_text(encoding="utf-8")


class TemplateError(LookupError):
    pass


def search_path() -> list[Path]:
    """A lender's own template folder (`DUNNING_TEMPLATE_DIR`) first, then the shipped one."""
    from dunning.settings import get_settings

    extra = get_settings().template_dir
    return [extra, TEMPLATE_DIR] if extra is not None else [TEMPLATE_DIR]


def _find(name: str, language: str) -> Path | None:
    for folder in search_path():
        path = folder / language / f"{name}.j2"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=4)
def _environment(folders: tuple[Path, ...] = (TEMPLATE_DIR,)) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader([str(f) for f in folders]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def render(name: str, language: str, variables: Mapping[str, object]) -> str:
    """Render template `name` in `language`; an unknown variable is an error, not a blank.

    Values are strings, or lists of string tuples for tables (a plan's schedule).
    """
    if _find(name, language) is None:
        raise TemplateError(f"no template {name!r} for language {language!r}")
    template = _environment(tuple(search_path())).get_template(f"{language}/{name}.j2")
    return template.render(**variables).strip()


def available(language: str) -> set[str]:
    return {p.stem for folder in search_path() for p in (folder / language).glob("*.j2")}


def variables(name: str, language: str) -> set[str]:
    """The variables template `name` uses (every one must be supplied when rendering)."""
    text = source(name, language)
    return set(meta.find_undeclared_variables(_environment().parse(text)))
