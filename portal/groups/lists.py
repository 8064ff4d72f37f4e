"""The groups list (SPEC 8.2): its columns, search and filters, for the page and the API; a
tenant admin sees only the groups their tenants hold quota in."""

from flask import abort
from sqlalchemy import select

from portal.auth.access import get_or_404, tenant_ids
from portal.extensions import db
from portal.i18n import _l
from portal.models import BaremetalGroup, BaremetalGroupTenantQuota
from portal.web.listing import Column, Filter, Listing


def quota_groups():
    """Groups the current user's tenants hold quota in; None: every group."""
    ids = tenant_ids()
    if ids is None:
        return None
    return select(BaremetalGroupTenantQuota.group_id).where(
        BaremetalGroupTenantQuota.tenant_id.in_(ids)
    )


def visible_groups():
    """Tenant admins see only the groups their tenants hold quota in."""
    stmt = select(BaremetalGroup)
    held = quota_groups()
    if held is not None:
        stmt = stmt.where(BaremetalGroup.id.in_(held))
    return stmt


def _allocated(d: str):
    return getattr(BaremetalGroup, f"total_{d}") - getattr(BaremetalGroup, f"available_{d}")


groups = Listing(
    name="groups",
    statement=visible_groups,
    columns=[
        Column("name", _l("Name"), BaremetalGroup.name),
        Column("dimension", _l("Dimension"), BaremetalGroup.dimension),
        Column("total_cpu", _l("CPU"), BaremetalGroup.total_cpu, numeric=True),
        Column("allocated_cpu", _l("Allocated CPU"), _allocated("cpu"), numeric=True,
               value=lambda g: g.total_cpu - g.available_cpu),
        Column("available_cpu", _l("Free CPU"), BaremetalGroup.available_cpu, numeric=True),
        Column("total_memory", _l("Memory (GiB)"), BaremetalGroup.total_memory, numeric=True),
        Column("allocated_memory", _l("Allocated memory (GiB)"), _allocated("memory"), numeric=True,
               value=lambda g: g.total_memory - g.available_memory),
        Column("available_memory", _l("Free memory (GiB)"), BaremetalGroup.available_memory,
               numeric=True),
        Column("total_storage", _l("Storage (GiB)"), BaremetalGroup.total_storage, numeric=True),
        Column("allocated_storage", _l("Allocated storage (GiB)"), _allocated("storage"),
               numeric=True, value=lambda g: g.total_storage - g.available_storage),
        Column("available_storage", _l("Free storage (GiB)"), BaremetalGroup.available_storage,
               numeric=True),
        Column("description", _l("Description"), BaremetalGroup.description),
    ],
    search=[BaremetalGroup.name, BaremetalGroup.dimension, BaremetalGroup.description],
    filters=[
        Filter("dimension", _l("Dimension"), lambda s, v: s.where(BaremetalGroup.dimension == v),
               lambda: _dimensions()),
    ],
)


def _dimensions() -> list[tuple[str, str]]:
    """The dimension labels of the groups the user may see."""
    rows = db.session.scalars(
        visible_groups().with_only_columns(BaremetalGroup.dimension).distinct()
        .order_by(BaremetalGroup.dimension)
    )
    return [(d, d) for d in rows if d]


def visible_group_or_404(group_id: int) -> BaremetalGroup:
    """The group, or 404 for a tenant admin whose tenants hold no quota in it."""
    group = get_or_404(BaremetalGroup, group_id)
    held = quota_groups()
    if held is not None and db.session.scalar(
        held.where(BaremetalGroupTenantQuota.group_id == group.id).limit(1)
    ) is None:
        abort(404)
    return group
