"""An auditor's reveal of a case's personal data: what it must say (one definition,
used by the console and the HTTP API; `dunning audit history --reveal --reason` asks
for the same). Each reveal is recorded in `audit_reveals` before anything is shown."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.commands import ReasonText


class RevealTerms(BaseModel):
    """Why an auditor needs the clear fields (or the export, which holds them)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    reason: ReasonText = Field(
        description="why you need the clear names, phones and addresses (recorded with your name)"
    )
