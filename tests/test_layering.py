"""Imports flow one way: schemas <- workflows <- activities <- dunning <- entry points.

The contracts are import-linter's, in pyproject.toml; this runs them on the tree, and
on a copy of it with one forbidden import added, to show they would catch it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("schemas", "workflows", "activities", "dunning", "bench", "tests")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(where / "pyproject.toml")],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("where", "line", "broken"),
    [
        ("schemas/text.py", "import dunning.settings", "schemas is not allowed to import dunning"),
        ("workflows/decide.py", "import activities.chain", "workflows is not allowed to import"),
        ("dunning/samples.py", "import worker", "dunning is not allowed to import worker"),
        ("bench/bare.py", "import tests.factories", "bench is not allowed to import tests"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, where: str, line: str, broken: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.j2"))
    for module in ("worker.py", "starter.py", "pyproject.toml"):
        shutil.copy(ROOT / module, tmp_path / module)
    target = tmp_path / where
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n")

    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout
    assert broken in done.stdout, done.stdout
