"""The OpenAPI 3.1 document, built from the operations' own declarations and pydantic's
JSON Schemas of the models they parse and serialise — nothing is written by hand."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from portal.api import idempotency
from portal.api.core import Operation
from portal.api.problems import PROBLEM_TYPE
from portal.api.schemas import INT32, Problem

REF = "#/components/schemas/{model}"
PREFIX = "/api/v1"
ERROR_TEXT = {
    400: "A NUL character in the query string (code validation_error).",
    401: "No token, or an unknown or revoked one (code unauthorized).",
    403: "The token's roles may not do this (code forbidden).",
    404: "No such object, or one of another tenant (code not_found).",
    409: "Refused by the current state: placement refusals (no_quota, quota_exceeded, "
         "insufficient_capacity, with their numbers), duplicates, objects in use, or a "
         "request with the same Idempotency-Key still in progress (conflict).",
    413: "The body is larger than the portal accepts (code too_large).",
    422: "The request is not valid; errors names each field (code validation_error).",
    503: "The database is unreachable or its schema is not at head; retry after Retry-After "
         "seconds (code service_unavailable).",
}
SUCCESS_TEXT = {200: "OK", 201: "Created", 202: "Accepted: the agent finishes the job",
                204: "Done; no content"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Components:
    """Schemas shared by reference; pydantic's $defs land here."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        schema = _without_null_defaults(schema)
        known = self.schemas.get(name)
        if known is not None and known != schema:
            raise ValueError(f"two different schemas are both named {name}")
        self.schemas[name] = schema

    def schema_of(self, kind: Any, mode: str) -> dict[str, Any]:
        """A $ref for a model, the inline schema for anything else (a union)."""
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self.add(name, sub)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.add(kind.__name__, schema)
            return {"$ref": REF.format(model=kind.__name__)}
        return _without_null_defaults(schema)


def _admits_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return (kind == "null" or (isinstance(kind, list) and "null" in kind)
            or any(_admits_null(branch) for branch in schema.get("anyOf", ())))


def _without_null_defaults(schema: Any) -> Any:
    """Drop ``"default": null`` where null is not a valid value. An update body's
    ``name: str = None`` means "leave it unchanged when left out", not "send null"; as a
    default it would be invalid (openapi-spec-validator checks defaults against types)."""
    if isinstance(schema, list):
        return [_without_null_defaults(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    clean = {key: _without_null_defaults(value) for key, value in schema.items()}
    if "default" in clean and clean["default"] is None and not _admits_null(clean):
        del clean["default"]
    return clean


def _parameters(op: Operation, components: Components) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer", "minimum": 1, "maximum": INT32}}
        for name in op.path_params
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=REF, mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            components.add(name, sub)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required,
                     "schema": _not_null(prop)}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if op.idempotent:
        params.append({"name": idempotency.HEADER, "in": "header", "required": False,
                       "description": idempotency.HEADER_HELP,
                       "schema": {"type": "string", "minLength": 1,
                                  "maxLength": idempotency.MAX_KEY,
                                  "pattern": "^[\\x21-\\x7e]+$"}})
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter is simply left out: a query string has no null."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "default", "description")}
    if prop.get("default") is not None:
        schema["default"] = prop["default"]
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    return schema


def _operation(op: Operation, components: Components) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
    }
    description = op.description
    if op.access is not None:
        who = f"Allowed to: {op.access.describe()}."
        description = f"{description}\n\n{who}" if description else who
    if description:
        doc["description"] = description
    params = _parameters(op, components)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.schema_of(op.body,
                                                                           "validation")}},
        }
    success: dict[str, Any] = {"description": SUCCESS_TEXT.get(op.status, "OK")}
    if op.response is not None and op.status != 204:
        success["content"] = {
            "application/json": {"schema": components.schema_of(op.response, "serialization")}
        }
    headers = dict(op.headers)
    if op.idempotent:
        headers[idempotency.REPLAYED] = ("`true` when this is the stored answer to an earlier "
                                         "request with the same Idempotency-Key.")
    if headers:
        success["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                              for name, text in headers.items()}
    responses: dict[str, Any] = {str(op.status): success}
    errors = set(op.errors) | ({409} if op.method in WRITE_METHODS else set())
    problem_ref = {"$ref": REF.format(model="Problem")}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERROR_TEXT.get(status, "Error"),
            "content": {PROBLEM_TYPE: {"schema": problem_ref}},
        }
    doc["responses"] = responses
    if op.access is None:
        doc["security"] = []
    return doc


def build(operations: list[Operation], version: str) -> dict[str, Any]:
    components = Components()
    components.schema_of(Problem, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op, components)
    tags = sorted({tag for op in operations for tag in op.tags})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Resource Portal API",
            "version": version,
            "description": (
                "Racks, servers, groups, tenants and quotas, flavors, VMs and Kubernetes "
                "clusters, placed automatically under per-tenant quotas. Authenticate with "
                "`Authorization: Bearer <token>` (a token from `flask users create … --token` "
                "or the profile page). Lists take `limit`/`offset` and answer "
                "`{\"items\": [...], \"total\": N}`. Errors are RFC 9457 "
                "`application/problem+json` with a machine-readable `code`."
            ),
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
