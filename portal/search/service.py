"""Global search across names, serials, ASNs, VM and cluster names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, or_, select

from portal.auth.access import visible_only
from portal.extensions import db
from portal.models import Baremetal, BaremetalGroup, K8sCluster, Rack, Tenant, VirtualMachine
from portal.web.listing import escape_like

LIMIT = 25
SEARCH_TYPES = {
    "rack": ("Racks", Rack, lambda p: [Rack.name.ilike(p, escape="\\"),
                                        cast(Rack.bgp_asn, String).ilike(p, escape="\\")]),
    "baremetal": ("Servers", Baremetal, lambda p: [Baremetal.name.ilike(p, escape="\\"),
                                                   Baremetal.serial.ilike(p, escape="\\")]),
    "baremetal_group": ("Groups", BaremetalGroup,
                        lambda p: [BaremetalGroup.name.ilike(p, escape="\\")]),
    "tenant": ("Tenants", Tenant, lambda p: [Tenant.name.ilike(p, escape="\\")]),
    "virtual_machine": ("VMs", VirtualMachine,
                        lambda p: [VirtualMachine.name.ilike(p, escape="\\")]),
    "k8s_cluster": ("Clusters", K8sCluster, lambda p: [K8sCluster.name.ilike(p, escape="\\")]),
}


def search(q: str, kind: str = "") -> dict[str, list[Any]]:
    if not q:
        return {}
    pattern = f"%{escape_like(q)}%"
    results = {}
    for key, (_label, model, conditions) in SEARCH_TYPES.items():
        if kind and key != kind:
            continue
        stmt = select(model).where(or_(*conditions(pattern)))
        if model in (VirtualMachine, K8sCluster):
            stmt = visible_only(stmt, model)
        rows = db.session.scalars(stmt.order_by(model.name).limit(LIMIT)).all()
        if rows:
            results[key] = rows
    return results
