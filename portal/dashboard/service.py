"""What the dashboard shows, each figure one aggregate query."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.auth.access import visible
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    ProvisionJob,
    VirtualMachine,
)
from portal.tenants.quotas import quota_usages


def count_by_status(model, condition=None) -> dict[str, int]:
    stmt = select(model.status, func.count()).group_by(model.status)
    if condition is not None:
        stmt = stmt.where(condition)
    return dict(db.session.execute(stmt).all())


def estate_summary(tenant_ids=None, operator: bool = True) -> dict:
    """Counts of the VMs and clusters the current user may read (portal.auth.access.visible);
    servers and groups for staff (tenant_ids None); the audit trail and the job queue for
    operators."""
    summary = {
        "vms": count_by_status(VirtualMachine, visible(VirtualMachine)),
        "clusters": count_by_status(K8sCluster, visible(K8sCluster)),
    }
    if tenant_ids is None:
        summary["servers"] = count_by_status(Baremetal)
        summary["groups"] = db.session.scalars(
            select(BaremetalGroup).order_by(BaremetalGroup.name)
        ).all()
        if operator:
            summary["recent"] = db.session.scalars(
                select(AuditEvent)
                .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
                .limit(10)
            ).all()
            summary["jobs_in_flight"] = db.session.scalar(
                select(func.count(ProvisionJob.id)).where(
                    ProvisionJob.status.in_(("queued", "claimed"))
                )
            )
    else:
        quotas = db.session.scalars(
            select(BaremetalGroupTenantQuota)
            .options(
                joinedload(BaremetalGroupTenantQuota.group),
                joinedload(BaremetalGroupTenantQuota.tenant),
            )
            .where(BaremetalGroupTenantQuota.tenant_id.in_(tenant_ids))
            .order_by(BaremetalGroupTenantQuota.tenant_id, BaremetalGroupTenantQuota.group_id)
        ).all()
        summary["quotas"] = quota_usages(list(quotas))
    return summary
