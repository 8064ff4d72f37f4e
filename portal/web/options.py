"""Choices for filter forms, read from the data."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import has_request_context, request
from sqlalchemy import select

from portal.extensions import db
from portal.i18n import _l


def per_request(fn: Callable[..., list]) -> Callable[..., list]:
    """Read a choice list once per page view: a list page asks for a filter's choices to
    check the value it was given and again to draw the filter, and a bulk form asks for the
    same people. Only while reading (GET/HEAD): a request that writes sees what it wrote."""

    @functools.wraps(fn)
    def cached(*args: Any) -> list:
        if not has_request_context() or request.method not in ("GET", "HEAD"):
            return fn(*args)
        # Kept in the request's environ, not in g: an app context (and its g) can outlive
        # one request.
        memo = request.environ.setdefault("portal.choices", {})
        # Arguments are columns and models (module-level objects, compared by identity).
        key = (fn.__qualname__, *(id(a) for a in args))
        if key not in memo:
            memo[key] = fn(*args)
        return memo[key]

    return cached


@per_request
def distinct_values(column: Any) -> list[tuple[str, str]]:
    values = db.session.scalars(select(column).distinct().order_by(column)).all()
    return [(str(v), str(v)) for v in values if v not in (None, "")]


def enum_choices(values: tuple[str, ...], kind: str | None = None) -> list[tuple[str, str]]:
    """Stored values with their readings: statuses translated (portal.web.labels), any
    other value (a mesh type, a role code) as it is, until its area gives it a label."""
    from portal.web.labels import status_label

    return [(v, status_label(v, kind)) for v in values]


@per_request
def named_choices(model: Any) -> list[tuple[str, str]]:
    rows = db.session.execute(select(model.id, model.name).order_by(model.name)).all()
    return [(str(row.id), row.name) for row in rows]


@per_request
def tenant_choices() -> list[tuple[str, str]]:
    """Tenants the current user may see: a tenant admin is never shown other tenants."""
    from portal.auth.access import scoped
    from portal.models import Tenant

    rows = db.session.execute(
        scoped(select(Tenant.id, Tenant.name), Tenant.id).order_by(Tenant.name)
    ).all()
    return [(str(row.id), row.name) for row in rows]


@per_request
def maintainer_choices() -> list[tuple[str, str]]:
    """Everyone for staff; for a tenant admin only who looks after their own resources."""
    from portal.auth.access import tenant_ids
    from portal.maintainers.service import people_on_tenants
    from portal.models import Maintainer

    stmt = select(Maintainer.id, Maintainer.name).order_by(Maintainer.name)
    ids = tenant_ids()
    if ids is not None:
        stmt = stmt.where(Maintainer.id.in_(people_on_tenants(ids)))
    return [(str(r.id), r.name) for r in db.session.execute(stmt).all()]


@per_request
def maintainer_group_choices() -> list[tuple[str, str]]:
    from portal.auth.access import tenant_ids
    from portal.maintainers.service import groups_on_tenants
    from portal.models import MaintainerGroup

    stmt = select(MaintainerGroup.id, MaintainerGroup.name).order_by(MaintainerGroup.name)
    ids = tenant_ids()
    if ids is not None:
        stmt = stmt.where(MaintainerGroup.id.in_(groups_on_tenants(ids)))
    return [(str(r.id), r.name) for r in db.session.execute(stmt).all()]


def maintainer_filters(resource_type: str, id_column) -> list:
    """The two filters every assignable list offers: by maintainer (directly or through a
    group) and by maintainer group."""
    from portal.maintainers.service import maintained_ids
    from portal.web.listing import Filter

    return [
        Filter(
            "maintainer",
            _l("Maintainer"),
            lambda s, v: s.where(
                id_column.in_(maintained_ids(resource_type, maintainer_id=int(v)))
            ),
            maintainer_choices,
        ),
        Filter(
            "maintainer_group",
            _l("Maintainer group"),
            lambda s, v: s.where(id_column.in_(maintained_ids(resource_type, group_id=int(v)))),
            maintainer_group_choices,
        ),
    ]
