"""Global search: names, serials, ASNs, notes and descriptions, maintainers — each kind
only for those who may read it, and tenant-owned rows only within the reader's tenants.

Every kind answers with its first LIMIT rows and how many match in all, so that a page
never cuts a list silently ("25 of 59 — show all"); asked for one kind, the page shows up
to ALL_LIMIT rows of it (and says so if even that is not all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, or_, select

from portal.auth.access import can, scoped, tenant_ids, visible_only
from portal.extensions import db
from portal.i18n import _l
from portal.models import (
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    Maintainer,
    MaintainerGroup,
    Rack,
    Tenant,
    VirtualMachine,
)
from portal.web.listing import escape_like

LIMIT = 25
ALL_LIMIT = 500


def _like(*columns: Any) -> Callable[[str], list[Any]]:
    return lambda pattern: [col.ilike(pattern, escape="\\") for col in columns]


def _groups_in_scope(stmt: Any) -> Any:
    """Tenant admins find the groups their tenants hold quota in (as the groups list)."""
    ids = tenant_ids()
    if ids is None:
        return stmt
    held = select(BaremetalGroupTenantQuota.group_id).where(
        BaremetalGroupTenantQuota.tenant_id.in_(ids))
    return stmt.where(BaremetalGroup.id.in_(held))


@dataclass(frozen=True)
class Kind:
    label: Any
    model: Any
    area: str  # portal.auth.access.RULES: who may read this kind
    conditions: Callable[[str], list[Any]]
    scope: Callable[[Any], Any] = lambda stmt: stmt
    endpoint: tuple[str, str] | None = None  # (endpoint, id argument) of the detail page
    # The rows found unless deleted ones are asked for (as on the kind's list page).
    live: Any = None


SEARCH_TYPES: dict[str, Kind] = {
    "rack": Kind(_l("Racks"), Rack, "racks",
                 lambda p: [Rack.name.ilike(p, escape="\\"),
                            cast(Rack.bgp_asn, String).ilike(p, escape="\\"),
                            Rack.location.ilike(p, escape="\\"),
                            Rack.network_notes.ilike(p, escape="\\")],
                 endpoint=("racks.detail", "rack_id")),
    "baremetal": Kind(_l("Servers"), Baremetal, "baremetals",
                      _like(Baremetal.name, Baremetal.serial),
                      endpoint=("baremetals.detail", "server_id")),
    "baremetal_group": Kind(_l("Groups"), BaremetalGroup, "groups",
                            _like(BaremetalGroup.name, BaremetalGroup.description),
                            _groups_in_scope, ("groups.detail", "group_id")),
    "tenant": Kind(_l("Tenants"), Tenant, "tenants",
                   _like(Tenant.name, Tenant.description, Tenant.contact),
                   lambda stmt: scoped(stmt, Tenant.id), ("tenants.detail", "tenant_id")),
    "virtual_machine": Kind(_l("VMs"), VirtualMachine, "vms",
                            _like(VirtualMachine.name),
                            lambda stmt: visible_only(stmt, VirtualMachine),
                            ("vms.detail", "vm_id"), VirtualMachine.status != "deleted"),
    "k8s_cluster": Kind(_l("Clusters"), K8sCluster, "clusters",
                        _like(K8sCluster.name, K8sCluster.description),
                        lambda stmt: visible_only(stmt, K8sCluster),
                        ("clusters.detail", "cluster_id")),
    "maintainer": Kind(_l("Maintainers"), Maintainer, "maintainers",
                       _like(Maintainer.name, Maintainer.account, Maintainer.email),
                       endpoint=("maintainers.detail", "maintainer_id")),
    "maintainer_group": Kind(_l("Maintainer groups"), MaintainerGroup, "maintainers",
                             _like(MaintainerGroup.name, MaintainerGroup.description),
                             endpoint=("maintainers.group_detail", "group_id")),
}


@dataclass
class Found:
    rows: list[Any]
    total: int

    @property
    def cut(self) -> bool:
        return self.total > len(self.rows)


def readable_types() -> dict[str, Kind]:
    """The kinds the current user may search."""
    return {key: kind for key, kind in SEARCH_TYPES.items() if can(kind.area)}


def search(q: str, kind: str = "", deleted: bool = False) -> dict[str, Found]:
    """Per kind that matches: its first rows (LIMIT, or ALL_LIMIT when one kind is asked
    for) and the number of matches in all; deleted VMs only when ``deleted``. Two queries
    per kind, whatever matches."""
    if not q:
        return {}
    pattern = f"%{escape_like(q)}%"
    limit = ALL_LIMIT if kind else LIMIT
    results = {}
    for key, spec in readable_types().items():
        if kind and key != kind:
            continue
        stmt = spec.scope(select(spec.model).where(or_(*spec.conditions(pattern))))
        if spec.live is not None and not deleted:
            stmt = stmt.where(spec.live)
        total = db.session.scalar(
            stmt.with_only_columns(func.count(), maintain_column_froms=True)) or 0
        if not total:
            continue
        rows = db.session.scalars(stmt.order_by(spec.model.name, spec.model.id)
                                  .limit(limit)).all()
        results[key] = Found(list(rows), total)
    return results
