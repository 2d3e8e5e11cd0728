"""Who may call what: bearer tokens and the roles table.

| role       | may                                                                 |
|------------|---------------------------------------------------------------------|
| service    | open cases, report payments, read a case's status                   |
| operator   | every action but write-offs (settlements up to the approval         |
|            | threshold), payments, and every read                                |
| supervisor | what an operator may, write-offs, settlements past the threshold,   |
|            | and the reports                                                     |
| auditor    | reads only: status, listing, history, reports; and the audit: a     |
|            | case's verify result and its export (recorded, with a reason), and  |
|            | in the console a reveal of the masked fields (recorded likewise)    |
| collector  | no endpoint: in the console, their team's call queue (claim a task, |
|            | its phone number, recorded; complete it, a promise on its case)     |

The token's name is the actor: the `operator` of the command sent to the case (the
`source` of a payment), so the case's events and the audit log record who acted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dunning.api.problems import Problem
from dunning.api.services import services
from dunning.api.tokens import Principal, lookup
from schemas.roles import Role

SERVICE, OPERATOR, SUPERVISOR, AUDITOR = Role.service, Role.operator, Role.supervisor, Role.auditor

# What each kind of endpoint allows; the routes name one of these.
OPEN_CASES = frozenset({SERVICE})
PAYMENTS = frozenset({SERVICE, OPERATOR, SUPERVISOR})
READ_STATUS = frozenset({SERVICE, OPERATOR, SUPERVISOR, AUDITOR})
READ = frozenset({OPERATOR, SUPERVISOR, AUDITOR})  # listing and history
ACTIONS = frozenset({OPERATOR, SUPERVISOR})
APPROVALS = frozenset({SUPERVISOR})  # write-off
REPORTS = frozenset({SUPERVISOR, AUDITOR})  # effectiveness figures
AUDIT = frozenset({AUDITOR})  # verify, export, reveal personal data with a reason

bearer = HTTPBearer(
    auto_error=False,
    description="a token from `dunning token create --role ROLE --name NAME`",
)

_UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


async def principal_for(request: Request, authorization: str | None) -> Principal | None:
    """The principal of an `Authorization: Bearer <token>` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await lookup(services(request).pool, token.strip())


async def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    found = (
        await principal_for(request, f"Bearer {credentials.credentials}") if credentials else None
    )
    if found is None:
        raise Problem(
            401,
            "unauthenticated",
            "send Authorization: Bearer <token>; tokens come from `dunning token create`",
            headers=_UNAUTHENTICATED,
        )
    request.state.principal = found
    return found


def allow(roles: frozenset[Role]) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, if its role is one of `roles` (else 403)."""
    names = ", ".join(sorted(r.value for r in roles))

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "forbidden", f"this needs one of the roles: {names}")
        return principal

    return dependency
