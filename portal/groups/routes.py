from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import requires, tenant_ids
from portal.models import BaremetalGroup, BaremetalGroupTenantQuota
from portal.web import list_page
from portal.web.listing import Column, Listing

bp = Blueprint("groups", __name__, url_prefix="/groups")


def _visible_groups():
    """Tenant admins see only the groups their tenants hold quota in."""
    stmt = select(BaremetalGroup)
    ids = tenant_ids()
    if ids is not None:
        stmt = stmt.where(
            BaremetalGroup.id.in_(
                select(BaremetalGroupTenantQuota.group_id).where(
                    BaremetalGroupTenantQuota.tenant_id.in_(ids)
                )
            )
        )
    return stmt


groups = Listing(
    name="groups",
    statement=_visible_groups,
    columns=[
        Column("name", "Name", BaremetalGroup.name),
        Column("dimension", "Dimension", BaremetalGroup.dimension),
        Column("total_cpu", "CPU", BaremetalGroup.total_cpu, numeric=True),
        Column("available_cpu", "Free CPU", BaremetalGroup.available_cpu, numeric=True),
        Column("total_memory", "Memory (GiB)", BaremetalGroup.total_memory, numeric=True),
        Column("available_memory", "Free memory (GiB)", BaremetalGroup.available_memory,
               numeric=True),
        Column("total_storage", "Storage (GiB)", BaremetalGroup.total_storage, numeric=True),
        Column("available_storage", "Free storage (GiB)", BaremetalGroup.available_storage,
               numeric=True),
    ],
    search=[BaremetalGroup.name, BaremetalGroup.dimension, BaremetalGroup.description],
)


@bp.route("/")
@requires("groups")
def list():  # noqa: A001
    return list_page(groups, "groups/list.html")
