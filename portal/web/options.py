"""Choices for filter forms, read from the data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.i18n import _l


def distinct_values(column: Any) -> list[tuple[str, str]]:
    values = db.session.scalars(select(column).distinct().order_by(column)).all()
    return [(str(v), str(v)) for v in values if v not in (None, "")]


def enum_choices(values: tuple[str, ...], kind: str | None = None) -> list[tuple[str, str]]:
    """Stored values with their readings: statuses translated (portal.web.labels), any
    other value (a mesh type, a role code) as it is, until its area gives it a label."""
    from portal.web.labels import status_label

    return [(v, status_label(v, kind)) for v in values]


def named_choices(model: Any) -> list[tuple[str, str]]:
    rows = db.session.execute(select(model.id, model.name).order_by(model.name)).all()
    return [(str(row.id), row.name) for row in rows]


def tenant_choices() -> list[tuple[str, str]]:
    """Tenants the current user may see: a tenant admin is never shown other tenants."""
    from portal.auth.access import scoped
    from portal.models import Tenant

    rows = db.session.execute(
        scoped(select(Tenant.id, Tenant.name), Tenant.id).order_by(Tenant.name)
    ).all()
    return [(str(row.id), row.name) for row in rows]


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
