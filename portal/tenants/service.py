"""Tenants: what one tenant holds, and where."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import BaremetalGroupTenantQuota, K8sCluster, Tenant, VirtualMachine
from portal.tenants.quotas import quota_usages


def tenant_overview(tenant: Tenant) -> dict:
    """Quotas with usage, live VMs and clusters of one tenant (a fixed number of queries)."""
    quotas = db.session.scalars(
        select(BaremetalGroupTenantQuota)
        .options(joinedload(BaremetalGroupTenantQuota.group))
        .where(BaremetalGroupTenantQuota.tenant_id == tenant.id)
    ).all()
    quotas = sorted(quotas, key=lambda q: q.group.name)
    vms = db.session.scalars(
        select(VirtualMachine)
        .options(joinedload(VirtualMachine.baremetal), joinedload(VirtualMachine.spec),
                 joinedload(VirtualMachine.cluster))
        .where(VirtualMachine.tenant_id == tenant.id, VirtualMachine.status != "deleted")
        .order_by(VirtualMachine.name)
    ).all()
    clusters = db.session.scalars(
        select(K8sCluster)
        .options(joinedload(K8sCluster.group))
        .where(K8sCluster.tenant_id == tenant.id, K8sCluster.status != "deleted")
        .order_by(K8sCluster.name)
    ).all()
    return {"quotas": quota_usages(list(quotas)), "vms": vms, "clusters": clusters}
