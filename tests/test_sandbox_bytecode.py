"""The worker writes the workflow package's bytecode, so a case the sandbox instantiates
afresh (out of the cache) does not compile the workflow's module from source."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

import workflows.loan_collection as loan_collection
from dunning.runtime import compile_workflow_modules


def test_the_worker_writes_the_bytecode_the_sandbox_then_loads_instead_of_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))  # where Python looks
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # PYTHONDONTWRITEBYTECODE=1
    source = str(Path(loan_collection.__file__))
    cached = Path(importlib.util.cache_from_source(source))
    assert not cached.exists()
    compile_workflow_modules.cache_clear()
    try:
        assert compile_workflow_modules()
    finally:
        compile_workflow_modules.cache_clear()
    assert cached.is_relative_to(tmp_path) and cached.exists()

    loader = importlib.machinery.SourceFileLoader("workflows.loan_collection", source)

    def compiled_from_source(*_: Any, **__: Any) -> None:
        raise AssertionError("compiled from source")

    monkeypatch.setattr(loader, "source_to_code", compiled_from_source)
    assert loader.get_code("workflows.loan_collection") is not None
