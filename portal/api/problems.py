"""RFC 9457 problem details: every error of the API in one shape, with the SPEC's
machine-readable ``code`` (section 5).

Services raise their own exceptions (RequestInvalid, PlacementRefused, JobError …); the
handlers at the bottom turn each into a problem, so that views never build error bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, json
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.i18n import _, _l

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"

VALIDATION_ERROR = "validation_error"
NOT_FOUND = "not_found"
FORBIDDEN = "forbidden"
UNAUTHORIZED = "unauthorized"
CONFLICT = "conflict"
NO_QUOTA = "no_quota"
QUOTA_EXCEEDED = "quota_exceeded"
INSUFFICIENT_CAPACITY = "insufficient_capacity"
METHOD_NOT_ALLOWED = "method_not_allowed"
TOO_LARGE = "too_large"
SERVER_ERROR = "server_error"
SERVICE_UNAVAILABLE = "service_unavailable"

# Titles follow Accept-Language (SPEC 8.3); the code never changes.
TITLES = {
    VALIDATION_ERROR: _l("The request is not valid"),
    NOT_FOUND: _l("Not found"),
    FORBIDDEN: _l("Your role may not do this"),
    UNAUTHORIZED: _l("A valid bearer token is required"),
    CONFLICT: _l("The request conflicts with the current state"),
    NO_QUOTA: _l("The tenant has no quota in this group"),
    QUOTA_EXCEEDED: _l("Quota exceeded"),
    INSUFFICIENT_CAPACITY: _l("Not enough capacity"),
    METHOD_NOT_ALLOWED: _l("Method not allowed"),
    TOO_LARGE: _l("The request is too large"),
    SERVER_ERROR: _l("Internal server error"),
    SERVICE_UNAVAILABLE: _l("The portal is unavailable"),
}
CODE_STATUS = {
    VALIDATION_ERROR: 422, NOT_FOUND: 404, FORBIDDEN: 403, UNAUTHORIZED: 401, CONFLICT: 409,
    NO_QUOTA: 409, QUOTA_EXCEEDED: 409, INSUFFICIENT_CAPACITY: 409, METHOD_NOT_ALLOWED: 405,
    TOO_LARGE: 413, SERVER_ERROR: 500, SERVICE_UNAVAILABLE: 503,
}
HTTP_CODES = {400: VALIDATION_ERROR, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND,
              405: METHOD_NOT_ALLOWED, 409: CONFLICT, 413: TOO_LARGE, 415: VALIDATION_ERROR,
              422: VALIDATION_ERROR}


class ApiError(Exception):
    """A problem raised by the API layer itself (authentication, scoping, bad JSON)."""

    def __init__(self, code: str, detail: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status or CODE_STATUS[code]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str | None = None) -> ApiError:
    return ApiError(NOT_FOUND, what if what is not None else _("No such object."))


def invalid(field: str, message: str) -> ApiError:
    """A validation problem about one field, raised by the API layer itself."""
    return ApiError(VALIDATION_ERROR, f"{field}: {message}", errors={field: message})


def problem(code: str, detail: str, status: int | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    status = status or CODE_STATUS[code]
    body = {
        "type": f"/api/v1/docs#problem-{code}",
        "title": str(TITLES.get(code, code.replace("_", " ").capitalize())),
        "status": status,
        "detail": str(detail),
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def unauthorized(detail: str) -> Response:
    return problem(UNAUTHORIZED, detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def unavailable(detail: str, **extra: Any) -> Response:
    from portal.health.service import retry_after

    return problem(SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(retry_after())},
                   **extra)


def validation_problem(errors: dict[str, str], detail: str | None = None) -> Response:
    return problem(
        VALIDATION_ERROR,
        detail or "; ".join(f"{field}: {message}" for field, message in errors.items()),
        errors=errors,
    )


# Pydantic's messages by error type, for readers of another language than English (in
# English pydantic's own wording stays, as clients have seen it); a type not listed here
# keeps pydantic's message. The placeholders are the error's context.
PYDANTIC_MESSAGES = {
    "missing": _l("Required."),
    "string_too_long": _l("At most %(max_length)s characters."),
    "string_too_short": _l("At least %(min_length)s characters."),
    "string_type": _l("Must be a string."),
    "string_pattern_mismatch": _l("Does not match the pattern %(pattern)s."),
    "int_type": _l("Must be a whole number."),
    "int_parsing": _l("Must be a whole number."),
    "int_from_float": _l("Must be a whole number."),
    "float_type": _l("Must be a number."),
    "float_parsing": _l("Must be a number."),
    "bool_type": _l("Must be true or false."),
    "bool_parsing": _l("Must be true or false."),
    "greater_than": _l("Must be greater than %(gt)s."),
    "greater_than_equal": _l("Must be at least %(ge)s."),
    "less_than": _l("Must be less than %(lt)s."),
    "less_than_equal": _l("Must be at most %(le)s."),
    "literal_error": _l("Must be one of %(expected)s."),
    "enum": _l("Must be one of %(expected)s."),
    "too_long": _l("At most %(max_length)s items."),
    "too_short": _l("At least %(min_length)s items."),
    "list_type": _l("Must be a list."),
    "dict_type": _l("Must be an object."),
    "model_type": _l("Must be an object."),
    "extra_forbidden": _l("Not a field of this request."),
    "datetime_type": _l("Must be an ISO 8601 date and time."),
    "datetime_parsing": _l("Must be an ISO 8601 date and time."),
    "datetime_from_date_parsing": _l("Must be an ISO 8601 date and time."),
    "json_invalid": _l("Not valid JSON."),
}


def pydantic_message(item: dict) -> str:
    from flask_babel import get_locale

    template = PYDANTIC_MESSAGES.get(item["type"])
    locale = get_locale()
    if template is None or locale is None or locale.language == "en":
        return item["msg"]
    context = {key: str(value) for key, value in (item.get("ctx") or {}).items()}
    try:
        return str(template) % context if "%(" in str(template) else str(template)
    except KeyError:  # a context this type does not always carry
        return item["msg"]


def pydantic_errors(error: ValidationError, prefix: str = "") -> dict[str, str]:
    """Field path → message, e.g. {"constraints.racks.0": "Input should be a valid string"}
    (in the reader's language, see PYDANTIC_MESSAGES)."""
    errors: dict[str, str] = {}
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "body"
        errors.setdefault(prefix + path, pydantic_message(item))
    return errors


def register_handlers(bp: Blueprint) -> None:
    """Every failure inside the API blueprint answers problem+json, and what the request
    changed is rolled back first."""
    from portal.clusters.service import ClusterError
    from portal.provisioning.jobs import JobError
    from portal.scheduler.reservation import PlacementRefused

    @bp.errorhandler(ApiError)
    def _api_error(error: ApiError):
        db.session.rollback()
        return problem(error.code, error.detail, error.status, error.headers, **error.extra)

    @bp.errorhandler(ValidationError)
    def _pydantic(error: ValidationError):
        db.session.rollback()
        return validation_problem(pydantic_errors(error))

    @bp.errorhandler(PlacementRefused)
    def _refused(refused: PlacementRefused):
        db.session.rollback()
        refusal = refused.refusal
        code = refusal.code if refusal.code in CODE_STATUS else CONFLICT
        from portal.scheduler.messages import refusal_message  # the reader's language

        return problem(code, refusal_message(refusal), details=refusal.details,
                       suggestions=refused.suggestions)

    @bp.errorhandler(ClusterError)
    @bp.errorhandler(JobError)
    def _state_conflict(error: Exception):
        db.session.rollback()
        return problem(CONFLICT, str(error))

    @bp.errorhandler(IntegrityError)
    def _integrity(error: IntegrityError):
        db.session.rollback()
        return problem(CONFLICT, _("The change conflicts with existing data (a name or pair "
                                   "that must be unique, or a row still referenced)."))

    @bp.errorhandler(OperationalError)
    @bp.errorhandler(PoolTimeout)
    def _database_unavailable(error: Exception):
        # The database is unreachable, restarting, or every pooled connection is busy:
        # worth retrying in a moment, not a bug (portal.health answers pages the same way).
        db.session.remove()
        log.warning("API request without a database: %s", error)
        return unavailable(_("The portal cannot reach its database right now; retry shortly."))

    @bp.errorhandler(HTTPException)
    def _http(error: HTTPException):
        db.session.rollback()
        code = HTTP_CODES.get(error.code or 500, SERVER_ERROR)
        default = type(error).description
        detail = error.description if error.description != default else str(TITLES[code])
        if error.code == 413:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            detail = _("The request is larger than the %(limit)s bytes this API accepts.",
                       limit=limit)
        headers = {}
        if error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return problem(code, detail, error.code, headers)

    @bp.errorhandler(Exception)
    def _unexpected(error: Exception):
        # Service exceptions that carry per-field errors (RackInvalid, QuotaInvalid, …)
        # are validation problems; anything else is a bug.
        errors = getattr(error, "errors", None)
        db.session.rollback()
        if isinstance(error, ValueError) and isinstance(errors, dict):
            return validation_problem({str(k): str(v) for k, v in errors.items()})
        log.exception("API request failed")
        return problem(SERVER_ERROR, _("The server failed to answer this request."))
