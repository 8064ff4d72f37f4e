"""JSON API v1 (SPEC section 5): thin routes over the same services as the pages.

Authentication is by ``Authorization: Bearer <token>`` only — never by the session cookie,
so the blueprint can be exempt from CSRF without reopening it. The token's user becomes
Flask-Login's ``current_user`` for the request (without touching the session), so roles
and tenant scoping (portal.auth.access) work exactly as on the pages.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request
from flask_login import AnonymousUserMixin
from werkzeug.exceptions import HTTPException

from portal.api.core import Api
from portal.api.problems import (
    FORBIDDEN,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    ApiError,
    problem,
    register_handlers,
    unauthorized,
)
from portal.auth.access import public
from portal.auth.tokens import live_token
from portal.extensions import csrf, db
from portal.i18n import _

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp)
csrf.exempt(bp)
register_handlers(bp)

# Reachable without a token: the description of the API itself, and the portal's status
# (which must answer while the database, where tokens are checked, is away).
PUBLIC_ENDPOINTS = {"api.openapi", "api.docs", "api.status"}
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Minting and managing tokens: admin scope, so a leaked token cannot outlive its revocation
# through children it made.
ADMIN_ENDPOINTS = {"api.create_token", "api.revoke_token", "api.revoke_all_tokens"}


def required_scope(endpoint: str | None, method: str) -> str:
    """read for GET, write for every other operation, admin for token management."""
    if endpoint in ADMIN_ENDPOINTS:
        return "admin"
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


@bp.before_request
def _authenticate():
    g._login_user = AnonymousUserMixin()  # ignore any session cookie
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint == "api.unknown":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _space, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return unauthorized(_("Send an API token as 'Authorization: Bearer <token>'."))
    token = live_token(secret.strip())
    if token is None:
        db.session.rollback()
        return unauthorized(_("The token is unknown, revoked, expired, or its account is "
                              "disabled."))
    scopes, needed = token.scopes.split(), required_scope(request.endpoint, request.method)
    g.api_token_scopes = scopes
    # portal.auth.access narrows the user's roles to this tenant for the request.
    g.api_token_restriction = (token.user_id, token.tenant_id) if token.tenant_id else None
    user = token.user
    # last_used_at is written now, so that the services start with a clean session
    # (reserve() owns its transaction).
    db.session.commit()
    if needed not in scopes:
        return problem(FORBIDDEN, _("This token's scopes are %(scopes)s; this operation needs "
                                    "a %(needed)s token.", scopes=" ".join(scopes),
                                    needed=needed))
    g._login_user = user
    return None


@bp.route("/", defaults={"rest": ""}, methods=ANY_METHOD)
@bp.route("/<path:rest>", methods=ANY_METHOD)
@public
def unknown(rest: str):
    """Anything under /api/v1 that no operation matches: a problem, not the HTML page."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in ANY_METHOD:
        try:
            endpoint, _args = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "api.unknown":
            allowed.add(method)
    if allowed:
        raise ApiError(METHOD_NOT_ALLOWED, _("%(method)s is not allowed here.",
                                             method=request.method),
                       headers={"Allow": ", ".join(sorted(allowed))})
    raise ApiError(NOT_FOUND, _("No API resource at %(path)s.", path=request.path))


def init_api() -> Blueprint:
    """The blueprint with every operation registered (imported for their decorators)."""
    from portal.api import (  # noqa: F401
        audit,
        autoscaling,
        clusters,
        docs,
        evacuation,
        inventory,
        jobs,
        maintainers,
        metrics,
        placements,
        status,
        tenants,
        tokens,
        vms,
        webhooks,
    )

    return bp
