"""The thin layer between Flask and the services: one decorator declares an operation —
method, path, access rule, query/body/response models, status and error responses — and
that declaration is both what runs (parse with pydantic, check the role, call the view,
serialise with the response model) and what the OpenAPI document is built from, so the
document cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from flask_login import current_user
from pydantic import BaseModel, TypeAdapter, ValidationError

from portal.api import idempotency
from portal.api.problems import FORBIDDEN, VALIDATION_ERROR, ApiError, pydantic_errors
from portal.auth.access import OPERATOR, can, roles_of
from portal.i18n import _, _l

ROLE_PLURALS = {"operator": _l("operators"), "tenant_admin": _l("tenant admins"),
                "maintainer": _l("maintainers")}

PATH_PARAM = re.compile(r"\{(\w+)\}")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Access:
    """Who may call an operation: a rule of portal.auth.access.RULES; operators only (area
    None: provisioning jobs, which RULES has no area for); or any user ("any": their own
    account and tokens)."""

    area: str | None
    action: str = "read"

    def allows(self) -> bool:
        if self.area == "any":
            return bool(current_user.is_authenticated)
        if self.area is None:
            return OPERATOR in roles_of(current_user)
        return can(self.area, self.action)

    def describe(self) -> str:
        if self.area == "any":
            return _("any signed-in user")
        if self.area is None:
            return _("operators")
        from portal.auth.access import RULES

        roles = sorted(RULES[self.area].get(self.action, ()))
        return ", ".join(str(ROLE_PLURALS.get(r, r)) for r in roles)


OPERATORS_ONLY = Access(None)
ANY_ROLE = Access("any")  # any token, whatever its user's roles: their own account


@dataclass
class Operation:
    method: str
    path: str  # OpenAPI form, relative to /api/v1: /vms/{vm_id}
    endpoint: str
    summary: str
    description: str
    tags: tuple[str, ...]
    access: Access | None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | Any = None  # a model, or an annotated union of models
    response: Any = None  # a model (or type) serialised with pydantic; None: no body
    status: int = 200
    errors: tuple[int, ...] = ()
    path_params: tuple[str, ...] = field(default_factory=tuple)
    # Honours Idempotency-Key (every write but the agents' job protocol).
    idempotent: bool = False
    # Response headers worth documenting: name -> description.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.endpoint


class Api:
    """Registry of operations on one blueprint."""

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tags: Sequence[str],
        access: Access | None,
        query: type[BaseModel] | None = None,
        body: Any = None,
        response: Any = None,
        status: int = 200,
        errors: Sequence[int] = (),
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            params = tuple(PATH_PARAM.findall(path))
            implied = set(errors) | {400}  # a NUL in the query string (portal.web.guard)
            if access is not None:
                implied |= {401, 403}
            if params:
                implied.add(404)
            is_idempotent = method.upper() in WRITE_METHODS if idempotent is None \
                else idempotent
            if query is not None or body is not None or is_idempotent:
                implied.add(422)  # an Idempotency-Key is checked like the body
            if body is not None:
                implied.add(413)
            op = Operation(
                method=method.upper(), path=path, endpoint=view.__name__, summary=summary,
                description=(view.__doc__ or "").strip(), tags=tuple(tags), access=access,
                query=query, body=body, response=response, status=status,
                errors=tuple(sorted(implied)), path_params=params,
                idempotent=is_idempotent,
                headers=dict(headers or {}),
            )
            body_adapter = TypeAdapter(body) if body is not None else None
            response_adapter = TypeAdapter(response) if response is not None else None

            @wraps(view)
            def endpoint(**path_values: int) -> Response:
                # Path ids beyond the database's integers never get here: the app's int
                # converter is bounded (portal.web.guard).
                if access is not None and not access.allows():
                    raise ApiError(FORBIDDEN, _("Only %(who)s may do this.", who=access.describe()))
                kwargs: dict[str, Any] = dict(path_values)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                if body_adapter is not None:
                    kwargs["body"] = parse_body(body_adapter)
                key = idempotency.request_key() if op.idempotent else None
                if key is None:
                    return respond(op, response_adapter, view(**kwargs))
                return idempotency.run_once(
                    current_user.id, key,
                    lambda: respond(op, response_adapter, view(**kwargs)),
                    lambda error: current_app.make_response(
                        current_app.handle_user_exception(error)),
                )

            # Declared like every page view (tests/auth check that no view lacks one).
            endpoint.access = (access.area or "operators", access.action) if access else (
                "public", "read")
            rule = PATH_PARAM.sub(r"<int:\1>", path)
            self.blueprint.add_url_rule(rule, endpoint=op.endpoint, view_func=endpoint,
                                        methods=[op.method])
            self.operations.append(op)
            return view

        return decorate


def parse_query(model: type[BaseModel]) -> BaseModel:
    values: dict[str, Any] = {}
    for name in request.args:
        items = request.args.getlist(name)
        values[name] = items if len(items) > 1 else items[0]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ApiError(VALIDATION_ERROR, _("The query string is not valid."),
                       errors=pydantic_errors(error, "query.")) from None


def parse_body(adapter: TypeAdapter) -> Any:
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(VALIDATION_ERROR, _("The body is not valid JSON."),
                       errors={"body": _("Send a JSON object.")}) from None
    except RecursionError:
        raise ApiError(VALIDATION_ERROR, _("The body is nested too deeply."),
                       errors={"body": _("Send a JSON object nested at most a few levels.")}
                       ) from None
    if not isinstance(data, dict):
        raise ApiError(VALIDATION_ERROR, _("The body must be a JSON object."),
                       errors={"body": _("Send a JSON object.")})
    try:
        return adapter.validate_json(raw)
    except ValidationError as error:
        raise ApiError(VALIDATION_ERROR, _("The body is not valid."),
                       errors=pydantic_errors(error)) from None


def respond(op: Operation, adapter: TypeAdapter | None, result: Any) -> Response:
    headers: dict[str, str] = {}
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):  # (value, headers)
        result, headers = result
    if adapter is None or op.status == 204:
        return Response(status=op.status, headers=headers)
    payload = adapter.dump_python(
        adapter.validate_python(result, from_attributes=True), mode="json"
    )
    return Response(json.dumps(payload), status=op.status, headers=headers,
                    mimetype="application/json")
