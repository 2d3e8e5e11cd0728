"""The shipped message templates (`<language>/<name>.j2` beside this module), and where
a lender's own are looked for first (`DUNNING_TEMPLATE_DIR`).

The rendering is `activities.templates.Templates`; this module only says which folders.
"""

from __future__ import annotations

from pathlib import Path

from activities.templates import TemplateError, Templates
from schemas.channels import SMS_OPT_OUT

__all__ = ["OPT_OUT_LINES", "SHIPPED", "TemplateError", "Templates", "current", "search_path"]

SHIPPED = Path(__file__).parent

# The variables a policy's templates are given are declared once, per kind of
# template, in `schemas.channels.TEMPLATE_VARIABLES`; `dunning.policies` refuses a
# template that uses anything else when its policy is checked or loaded.
# Every SMS carries an opt-out (docs/domain.md rule 5); `policy check` looks for each
# channel's own line (`schemas.channels.ChannelSpec.opt_out`). The SMS lines, as before:
OPT_OUT_LINES = SMS_OPT_OUT


def search_path() -> list[Path]:
    """A lender's own template folder (`DUNNING_TEMPLATE_DIR`) first, then the shipped one."""
    from dunning.settings import get_settings

    extra = get_settings().template_dir
    return [extra, SHIPPED] if extra is not None else [SHIPPED]


def current() -> Templates:
    """The templates the settings name."""
    return Templates(search_path())
