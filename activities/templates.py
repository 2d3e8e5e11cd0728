"""Message templates: reviewed data files per language, rendered in a Jinja2 sandbox.

Templates are the only text that reaches a borrower, so they live in files that go
through review, never in code or free text, and cannot reach Python internals. Which
folders hold them is the caller's: `dunning.templates.current()` gives a lender's own
folder (`DUNNING_TEMPLATE_DIR`) before the shipped one; the activities are handed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment


class TemplateError(LookupError):
    """No such template, in that language."""


@lru_cache(maxsize=8)
def _environment(folders: tuple[Path, ...]) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader([str(f) for f in folders]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


class Templates:
    """The templates of some folders, searched in order (`<folder>/<language>/<name>.j2`)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = tuple(folders)

    def find(self, name: str, language: str) -> Path | None:
        for folder in self.folders:
            path = folder / language / f"{name}.j2"
            if path.is_file():
                return path
        return None

    def source(self, name: str, language: str) -> str:
        path = self.find(name, language)
        if path is None:
            raise TemplateError(f"no template {name!r} for language {language!r}")
        return path.read_text(encoding="utf-8")

    def render(self, name: str, language: str, variables: Mapping[str, object]) -> str:
        """Render template `name` in `language`; an unknown variable is an error, not a
        blank. Values are strings, or lists of string tuples for tables (a plan's schedule).
        """
        if self.find(name, language) is None:
            raise TemplateError(f"no template {name!r} for language {language!r}")
        template = _environment(self.folders).get_template(f"{language}/{name}.j2")
        return template.render(**variables).strip()

    def available(self, language: str) -> set[str]:
        return {p.stem for folder in self.folders for p in (folder / language).glob("*.j2")}

    def variables(self, name: str, language: str) -> set[str]:
        """The variables template `name` uses (every one must be supplied when rendering)."""
        return set(_undeclared(self.folders, self.source(name, language)))


@lru_cache(maxsize=256)
def _undeclared(folders: tuple[Path, ...], text: str) -> frozenset[str]:
    """The variables a template's text uses, parsed once per distinct text: every case
    opened checks its policy's templates (`dunning.policies`), and parsing them each time
    was most of the cost of an opening. The file is still read each time."""
    return frozenset(meta.find_undeclared_variables(_environment(folders).parse(text)))
