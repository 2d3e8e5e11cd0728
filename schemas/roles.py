"""Who may do what: the roles of principals (API tokens, console sessions).

One definition, used by the table of actions (`dunning/actions_table.py`), the HTTP
API and the console.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    service = "service"  # backend services: open cases, report payments, read status
    operator = "operator"  # collectors and operators: actions, reads
    supervisor = "supervisor"  # what an operator may, and approvals (four eyes)
    auditor = "auditor"  # reads, reveals with a reason; no action
    # a team's call tasks: claim, the claimed task's phone (recorded), complete it (a
    # promise on its case included); nothing else
    collector = "collector"


# What each role may also do, beyond itself: a supervisor may act where an operator may.
INCLUDES: dict[Role, frozenset[Role]] = {
    Role.service: frozenset({Role.service}),
    Role.operator: frozenset({Role.operator}),
    Role.supervisor: frozenset({Role.supervisor, Role.operator}),
    Role.auditor: frozenset({Role.auditor}),
    Role.collector: frozenset({Role.collector}),
}


def may(role: Role, needed: frozenset[Role]) -> bool:
    """Whether a principal of `role` may do what any of `needed` may."""
    return bool(INCLUDES[role] & needed)
