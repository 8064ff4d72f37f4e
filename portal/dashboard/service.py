"""What the dashboard shows, each figure one aggregate query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Double, func, literal, select
from sqlalchemy.orm import joinedload

from portal.auth.access import visible
from portal.extensions import db
from portal.i18n import _
from portal.metrics import query as metrics
from portal.metrics.presence import Agent
from portal.models import (
    AuditEvent,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    ProvisionJob,
    VirtualMachine,
)
from portal.models.base import utcnow
from portal.tenants.quotas import quota_usages


def count_by_status(model, *conditions) -> dict[str, int]:
    """Rows per status, where every condition that is not None holds."""
    stmt = select(model.status, func.count()).group_by(model.status)
    for condition in conditions:
        if condition is not None:
            stmt = stmt.where(condition)
    return dict(db.session.execute(stmt).all())


def estate_summary(tenant_ids=None, operator: bool = True) -> dict:
    """Counts of the VMs and clusters the current user may read (portal.auth.access.visible),
    deleted VMs left out as on the VM list (a link lists them); servers and groups for staff
    (tenant_ids None); the audit trail and the job queue for operators."""
    summary = {
        "vms": count_by_status(VirtualMachine, visible(VirtualMachine),
                               VirtualMachine.status != "deleted"),
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


# ---- Hot spots (SPEC 8.4) -------------------------------------------------------------------

HOT_CPU = 0.85  # measured CPU above this is a hot server
# A measurement older than this is not "now": the server is not listed on it.
FRESH = timedelta(minutes=15)
# Each list shows the worst few and counts the rest.
TOP = 10


@dataclass(frozen=True)
class HotList:
    """The worst ``rows`` of one kind of hot spot (at most TOP) and how many there are."""

    rows: list = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True)
class HotSpots:
    hot_servers: HotList  # (server, cpu_util 0–1), hottest first
    # (server, memory used GiB, memory allocated GiB), most over first: use beyond what the
    # VMs were given and the host's own reserve (PORTAL_HOST_RESERVED_MEMORY_GIB)
    over_allocated: HotList
    pending_clusters: HotList  # (cluster, pods pending), most first
    stale_agents: HotList  # Agent, longest silent first
    reason: str | None  # the metrics source did not answer: no data, not "all is well"


def _top(pairs: list[tuple[int, tuple]], model, options=(), count: int | None = None
         ) -> HotList:
    """Load the objects of the first TOP (id, figures) pairs in one statement; ``count``
    of them all (default: as many as the pairs)."""
    shown = pairs[:TOP]
    objects = {o.id: o for o in db.session.scalars(
        select(model).options(*options).where(model.id.in_([i for i, _ in shown])))
    } if shown else {}
    return HotList([(objects[i], *figures) for i, figures in shown if i in objects],
                   len(pairs) if count is None else count)


def hot_spots(staff: bool, now: datetime | None = None) -> HotSpots:
    """What needs a look: servers above HOT_CPU measured CPU, servers using more memory
    than their VMs were allocated (beyond the host's reserve), clusters with pods pending,
    agents gone silent (staff only, but clusters: those the user may read). A bounded
    number of statements: for each list the objects over its bound (compared by the
    store, portal.metrics.query.latest_exceeding), then its TOP objects."""
    now = now or utcnow()
    since = now - FRESH
    reason = None
    hot = over = pending = HotList()
    try:
        if staff:
            # The hottest first, then by id; the most over its allocation first, then by id.
            count, cpu = metrics.latest_exceeding("baremetal", "cpu_util", since, HOT_CPU,
                                                  limit=TOP)
            hot = _top([(i, (v,)) for i, v in cpu], Baremetal, count=count)
            reserve = current_app.config["PORTAL_HOST_RESERVED_MEMORY_GIB"]
            allocated = Baremetal.total_memory - Baremetal.available_memory
            count, memory = metrics.latest_exceeding(
                "baremetal", "memory_used_gib", since,
                allocated + literal(float(reserve), Double), also=(allocated,),
                margin=allocated, limit=TOP)
            over = _top([(i, (v, given)) for i, v, given in memory], Baremetal, count=count)
        clusters = K8sCluster.status != "deleted"
        condition = visible(K8sCluster)
        if condition is not None:
            clusters = clusters & condition
        _count, pods = metrics.latest_exceeding("cluster", "pods_pending", since, 0,
                                                where=clusters)
        pending = _top(sorted(((i, (int(v),)) for i, v in pods),
                              key=lambda p: (-p[1][0], p[0])), K8sCluster,
                       (joinedload(K8sCluster.tenant),))
    except metrics.SourceUnavailable as unavailable:
        reason = str(unavailable) or _("the metrics source did not answer")
    stale: list[Agent] = sorted(metrics.stale_agents(now), key=lambda a: a.last_seen) \
        if staff else []
    return HotSpots(hot, over, pending, HotList(stale[:TOP], len(stale)), reason)
