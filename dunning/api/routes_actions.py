"""Actions on a live case, one route per row of `dunning.action_table.ACTIONS`.

The body is the action's terms (`schemas.commands.…Terms`: every bound, pattern and
enum declared once there); who acts comes from the token (its name is the command's
`operator`, a payment's `source`). The case checks the action: a refusal is a problem
whose type names the refusal's code, with the case's reason as `detail`; its status
follows the code's kind (409 the case does not allow it, 422 the input does not fit
this case, 403 four eyes, 503 a dependency did not answer); nothing is recorded. An
action that needs a second principal answers 202 with the pending request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from dunning import case_client
from dunning.action_table import ACTIONS, Action, InvalidTerms
from dunning.api import auth
from dunning.api.cases import case_id_from_path, case_problem
from dunning.api.problems import from_validation_error, invalid
from dunning.api.routes_cases import problems
from dunning.api.services import services
from dunning.api.tokens import Principal
from schemas.status import ActionResult

router = APIRouter(tags=["actions"])
RESPONSES = problems(401, 403, 404, 409, 422, 503)


async def run_action(
    request: Request, action: Action, case: str, body: BaseModel, principal: Principal
) -> JSONResponse:
    case_id = case_id_from_path(case)
    try:
        command = action.build(body, principal.name)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except InvalidTerms as exc:
        raise invalid([{"field": exc.field, "problem": exc.problem}]) from None
    try:
        result = await case_client.act(services(request).client, case_id, action.update, command)
    except case_client.CaseError as exc:
        raise case_problem(exc, case_id) from None
    status = 202 if result.pending_approval is not None else 200
    return JSONResponse(result.model_dump(mode="json"), status_code=status)


def _endpoint(action: Action) -> Callable[..., Awaitable[JSONResponse]]:
    async def endpoint(
        case_id: str, body: BaseModel, request: Request, principal: Principal
    ) -> JSONResponse:
        return await run_action(request, action, case_id, body, principal)

    # FastAPI reads the body's model and the role check from the signature.
    parameters = [
        inspect.Parameter("case_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=action.terms),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "principal",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Principal,
            default=Depends(auth.allow(action.roles)),
        ),
    ]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = action.update_name
    return endpoint


def _register(action: Action) -> None:
    roles = ", ".join(sorted(role.value for role in action.roles))
    extra: dict[int | str, dict[str, Any]] = {}
    if action.agreement is not None or action.update_name in ("write_off", "resolve_dispute"):
        extra[202] = {"model": ActionResult, "description": "requested: waits for approval"}
    router.post(
        f"/cases/{{case_id}}/{action.path}",
        summary=action.summary,
        description=f"Roles: {roles}. Body: `{action.terms.__name__}`.",
        response_model=ActionResult,
        responses={**RESPONSES, **extra},
        name=action.update_name,
    )(_endpoint(action))


for _action in ACTIONS:
    _register(_action)
