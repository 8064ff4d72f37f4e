"""The tenants list (SPEC 8.2): its columns and search, for the page and the API."""

from flask import g
from sqlalchemy import select

from portal.auth.access import scoped
from portal.i18n import _l
from portal.models import Tenant
from portal.tenants import service as tenants_service
from portal.tenants.service import EMPTY_STATS, STAT_COLUMNS
from portal.web.listing import Column, Listing


def _export_stat(key: str):
    """CSV value of a per-tenant total: all tenants' totals read once per export."""
    def value(tenant: Tenant) -> int:
        if "_tenant_stats" not in g:
            g._tenant_stats = tenants_service.tenant_stats()
        return g._tenant_stats.get(tenant.id, EMPTY_STATS)[key]

    return value


_TOTALS = tenants_service.with_totals  # what a sort by a per-tenant total joins in

tenants = Listing(
    name="tenants",
    statement=lambda: scoped(select(Tenant), Tenant.id),
    columns=[
        Column("name", _l("Name"), Tenant.name),
        Column("contact", _l("Contact"), Tenant.contact),
        Column("vms", _l("VMs"), STAT_COLUMNS["vms"], value=_export_stat("vms"), numeric=True,
               join=_TOTALS),
        Column("clusters", _l("Clusters"), STAT_COLUMNS["clusters"], value=_export_stat("clusters"),
               numeric=True, join=_TOTALS),
        Column("cpu", _l("CPU in use"), STAT_COLUMNS["cpu"], value=_export_stat("cpu"),
               numeric=True, join=_TOTALS),
        Column("memory", _l("Memory in use (GiB)"), STAT_COLUMNS["memory"],
               value=_export_stat("memory"), numeric=True, join=_TOTALS),
        Column("description", _l("Description"), Tenant.description),
    ],
    search=[Tenant.name, Tenant.contact, Tenant.description],
)


def stats_for(rows) -> dict:
    return tenants_service.tenant_stats(row.id for row in rows)
