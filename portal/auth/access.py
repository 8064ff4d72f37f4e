"""Roles and access: the one mechanism every view uses.

A user holds any of three roles (SPEC section 6): operator, tenant admin (of one or more
tenants), maintainer (linked to a Maintainer). RULES says which roles may do what in each
area; `requires(area, action)` guards a view, `can(area, action)` answers templates, and
`tenant_ids()` scopes every query of tenant-owned rows, so that another tenant's object
is simply not found (404, never 403).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, g, has_request_context
from flask_login import current_user, login_required
from sqlalchemy import false, or_, select

from portal.extensions import db, login_manager
from portal.i18n import _, _l
from portal.models import User

OPERATOR, TENANT_ADMIN, MAINTAINER = "operator", "tenant_admin", "maintainer"
EVERYONE = frozenset({OPERATOR, TENANT_ADMIN, MAINTAINER})
STAFF = frozenset({OPERATOR, MAINTAINER})
OPS = frozenset({OPERATOR})

# area -> action -> roles allowed. "write" covers create/update/delete of inventory.
RULES: dict[str, dict[str, frozenset[str]]] = {
    # Everyone searches what they may read (portal.search.service: per kind, scoped).
    "search": {"read": EVERYONE},
    "racks": {"read": STAFF, "write": OPS},
    "baremetals": {"read": STAFF, "write": OPS, "status": STAFF},
    # Tenant admins see the groups they hold quota in, capacity only.
    "groups": {"read": EVERYONE, "write": OPS},
    "tenants": {"read": EVERYONE, "write": OPS},
    # The flavor catalogue is what tenant admins choose from in the wizards.
    "specs": {"read": EVERYONE, "write": OPS},
    "meshes": {"read": STAFF, "write": OPS},
    "vms": {"read": EVERYONE, "create": OPS | {TENANT_ADMIN}, "delete": OPS | {TENANT_ADMIN}},
    "clusters": {
        "read": EVERYONE,
        "create": OPS | {TENANT_ADMIN},
        "delete": OPS | {TENANT_ADMIN},
        "status": STAFF,
    },
    "vm_groups": {"read": EVERYONE, "write": OPS | {TENANT_ADMIN}},
    # Scaling policies and their decisions, on a tenant's VM groups and clusters.
    "autoscaling": {"read": EVERYONE, "write": OPS | {TENANT_ADMIN}},
    "maintainers": {"read": STAFF, "write": OPS},
    "assignments": {"read": frozenset({MAINTAINER})},
    "audit": {"read": OPS},
    "users": {"read": OPS, "write": OPS},
    # A tenant admin manages the hooks of their own tenants (portal.webhooks.service).
    "webhooks": {"read": OPS | {TENANT_ADMIN}, "write": OPS | {TENANT_ADMIN}},
}

F = TypeVar("F", bound=Callable[..., Any])


def token_tenant(user: Any) -> int | None:
    """The tenant the request's API token is restricted to (portal.auth.tokens), if any:
    the user then acts as a tenant admin of that tenant only — and of none when they no
    longer administer it (operators may restrict to any tenant)."""
    restriction = g.get("api_token_restriction")
    if restriction is None or restriction[0] != user.id:
        return None
    return restriction[1]


def _restricted_tenants(user: Any, tenant_id: int) -> frozenset[int]:
    if user.is_operator or any(link.tenant_id == tenant_id for link in user.tenant_links):
        return frozenset({tenant_id})
    return frozenset()


def roles_of(user: Any) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = g.get("_roles")
    if cached is not None and g.get("_roles_user") == user.id:
        return cached
    restricted = token_tenant(user)
    if restricted is not None:
        g._roles = frozenset({TENANT_ADMIN}) if _restricted_tenants(user, restricted) else (
            frozenset())
        g._roles_user = user.id
        return g._roles
    roles = set()
    if user.is_operator:
        roles.add(OPERATOR)
    if user.tenant_links:
        roles.add(TENANT_ADMIN)
    if user.maintainer is not None:
        roles.add(MAINTAINER)
    g._roles, g._roles_user = frozenset(roles), user.id
    return g._roles


def can(area: str, action: str = "read", user: Any = None) -> bool:
    user = current_user if user is None else user
    allowed = RULES[area].get(action, frozenset())
    return bool(roles_of(user) & allowed)


def requires(area: str, action: str = "read") -> Callable[[F], F]:
    """Guard a view: log in first, then 403 unless one of the user's roles may act."""
    if action not in RULES[area]:
        raise ValueError(f"no rule for {area}.{action}")

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not can(area, action):
                abort(403)
            return view(*args, **kwargs)

        guarded.access = (area, action)  # type: ignore[attr-defined]
        return login_required(guarded)  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a view as reachable without logging in (login page, health check)."""
    view.access = ("public", "read")  # type: ignore[attr-defined]
    return view


def signed_in(view: F) -> F:
    """Any logged-in user, whatever their roles (their own profile and tokens)."""
    guarded = login_required(view)
    guarded.access = ("signed_in", "read")  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def tenant_ids(user: Any = None) -> frozenset[int] | None:
    """Tenants whose rows the user may see; None means every tenant (operators, and
    maintainers, who read everything)."""
    user = current_user if user is None else user
    restricted = token_tenant(user)
    if restricted is not None:
        return _restricted_tenants(user, restricted)
    roles = roles_of(user)
    if OPERATOR in roles or MAINTAINER in roles:
        return None
    return frozenset(link.tenant_id for link in user.tenant_links)


def administered_tenant_ids(user: Any = None) -> frozenset[int] | None:
    """Tenants the user may act for (create/delete VMs and clusters); None means all."""
    user = current_user if user is None else user
    restricted = token_tenant(user)
    if restricted is not None:
        return _restricted_tenants(user, restricted)
    if OPERATOR in roles_of(user):
        return None
    return frozenset(link.tenant_id for link in user.tenant_links)


def scoped(statement: Any, tenant_column: Any) -> Any:
    """Restrict a select() of tenant-owned rows to what the current user may see."""
    ids = tenant_ids()
    if ids is None:
        return statement
    return statement.where(tenant_column.in_(ids))


def visible(model: Any, user: Any = None) -> Any:
    """Which VMs or clusters (``model``) the user may read, as a WHERE condition; None
    means all (operators). Tenant admins read their tenants'; maintainers those assigned
    to them directly, through their groups, or inherited (SPEC section 6). Subqueries only,
    so that a list stays one query however many rows it has."""
    if user is None and not has_request_context():
        return None  # the system itself (CLI, agents): no person to restrict
    user = current_user if user is None else user
    roles = roles_of(user)
    if OPERATOR in roles:
        return None
    conditions = []
    if TENANT_ADMIN in roles:
        conditions.append(model.tenant_id.in_(administered_tenant_ids(user)))
    if MAINTAINER in roles:
        from portal.maintainers.service import maintained_by

        conditions.append(maintained_by(model, user.maintainer.id))
    return or_(*conditions) if conditions else false()


def visible_only(statement: Any, model: Any) -> Any:
    """Restrict a select() of VMs or clusters to those the current user may read."""
    condition = visible(model)
    return statement if condition is None else statement.where(condition)


def visible_or_404(model: Any, object_id: int) -> Any:
    """One VM or cluster the current user may read; 404 for any other, as for none."""
    obj = db.session.scalar(visible_only(select(model).where(model.id == object_id), model))
    if obj is None:
        abort(404)
    return obj


def get_or_404(model: type, object_id: int, tenant_column: Any = None) -> Any:
    """Load one row, or 404 when it does not exist or belongs to a tenant out of scope."""
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    if tenant_column is not None:
        ids = tenant_ids()
        if ids is not None and getattr(obj, tenant_column.key) not in ids:
            abort(404)
    return obj


def role_label(user: Any) -> str:
    roles = roles_of(user)
    parts = []
    if OPERATOR in roles:
        parts.append(_("Operator"))
    if TENANT_ADMIN in roles:
        names = ", ".join(sorted(link.tenant.name for link in user.tenant_links))
        parts.append(_("Tenant admin · %(tenants)s", tenants=names))
    if MAINTAINER in roles:
        parts.append(_("Maintainer"))
    return " / ".join(parts) or _("No role")


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    from portal.auth.sessions import user_for_session

    return user_for_session(session_id)


def init_access(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see that page.")
    login_manager.login_message_category = "info"

    @app.context_processor
    def _access_context() -> dict[str, Any]:
        return {
            "can": can,
            # The dashboard is every signed-in user's landing page.
            "can_view": lambda area: area == "dashboard" or can(area, "read"),
            "role_label": role_label,
        }
