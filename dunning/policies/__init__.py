"""Policy files: TOML, validated into `schemas.policy.Policy`, found by name.

Shipped policies live beside this module; `DUNNING_POLICY_DIR` adds a folder that
is searched first, so a lender keeps its own policies outside the code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dunning.datafiles import find_versioned, parse_toml
from dunning.settings import get_settings
from dunning.templates import current
from schemas.channels import CHANNELS, TEMPLATE_VARIABLES
from schemas.policy import Policy, day_length_problem

SHIPPED = Path(__file__).parent


class PolicyError(ValueError):
    """A policy that cannot be found or is invalid; the message names file and field."""


def search_path() -> list[Path]:
    extra = get_settings().policy_dir
    return [extra, SHIPPED] if extra is not None else [SHIPPED]


def load_file(path: Path) -> Policy:
    """The policy in `path`, checked: its day length, and its templates against the
    template files as they are now. The file is read each time; parsing and validating
    it is remembered for its exact content (every case opened loads its policy)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    policy = _parsed(path, content)
    _check_templates(path, policy)
    return policy


@lru_cache(maxsize=64)
def _parsed(path: Path, content: bytes) -> Policy:
    """`content` (of `path`) as a Policy, frozen, so one object can be shared; a
    PolicyError is raised again each time, never remembered."""
    policy = parse_toml(path, content, Policy, PolicyError)
    problem = day_length_problem(policy.day_length)
    if problem is not None:
        raise PolicyError(f"{path}: day_length: {problem}")
    return policy


def _check_templates(path: Path, policy: Policy) -> None:
    templates = current()
    for language in ("en", "zh-CN"):
        known = templates.available(language)
        for s, stage in enumerate(policy.stages):
            for a, action in enumerate(stage.actions):
                if action.template is None:
                    continue
                field = f"stages.{s}.actions.{a}.template"
                if action.template not in known:
                    raise PolicyError(
                        f"{path}: {field}: no template {action.template!r} for language {language}"
                    )
                spec = CHANNELS[action.channel]
                kind = spec.template
                assert kind is not None  # an action with a template is on a templated channel
                third_party = kind == "third_party"
                allowed = TEMPLATE_VARIABLES[kind]
                unknown = templates.variables(action.template, language) - allowed
                if unknown:
                    why = " (a third party must not learn of the debt)" if third_party else ""
                    raise PolicyError(
                        f"{path}: {field}: template {action.template!r} ({language}) uses "
                        f"unknown variable(s) {', '.join(sorted(unknown))}{why}; known: "
                        f"{', '.join(sorted(allowed))}"
                    )
                line = spec.opt_out[language] if spec.opt_out is not None else None
                if line is not None and line not in templates.source(action.template, language):
                    raise PolicyError(
                        f"{path}: {field}: template {action.template!r} ({language}) has no "
                        f"opt-out line ({line!r})"
                    )


def load(ref: str) -> Policy:
    """Load policy `NAME` (its current version, `NAME.toml`) or `NAME@VERSION`: the
    current file if it has that version, else an earlier one kept as
    `NAME@VERSION.toml` beside it. Cases pin the policy they open with, so publishing a
    new version changes no open case; `dunning policy migrate` moves one explicitly."""
    return find_versioned(ref, search_path(), load_file, PolicyError, "policy")
