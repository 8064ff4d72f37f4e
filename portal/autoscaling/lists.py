"""The scaling policy list: what the page and the API both run."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.auth.access import scoped
from portal.i18n import _l
from portal.models import K8sCluster, ScalingPolicy, Tenant, VmGroup
from portal.web.listing import Column, Filter, Listing
from portal.web.options import tenant_choices

TARGET_NAME = func.coalesce(VmGroup.name, K8sCluster.name)
MODE_LABELS = {"dry_run": _l("dry run"), "active": _l("active"), "off": _l("off")}
TARGET_LABELS = {"vm_group": _l("VM group"), "cluster": _l("Cluster")}

policies = Listing(
    name="scaling-policies",
    statement=lambda: scoped(
        select(ScalingPolicy)
        .outerjoin(ScalingPolicy.vm_group).outerjoin(ScalingPolicy.cluster)
        .outerjoin(ScalingPolicy.tenant)
        .options(joinedload(ScalingPolicy.vm_group), joinedload(ScalingPolicy.cluster),
                 joinedload(ScalingPolicy.tenant)),
        ScalingPolicy.tenant_id,
    ),
    columns=[
        Column("target", _l("Target"), TARGET_NAME, value=lambda p: p.target_name),
        Column("target_type", _l("Kind"), ScalingPolicy.target_type),
        Column("tenant", _l("Tenant"), Tenant.name, value=lambda p: p.tenant.name),
        Column("mode", _l("Mode"), ScalingPolicy.mode),
        Column("min", _l("Min"), ScalingPolicy.min_size, value=lambda p: p.min_size,
               numeric=True),
        Column("max", _l("Max"), ScalingPolicy.max_size, value=lambda p: p.max_size,
               numeric=True),
        Column("metric", _l("Metric"), ScalingPolicy.metric),
        Column("target_value", _l("Target value"), ScalingPolicy.target,
               value=lambda p: p.target, numeric=True),
        Column("backoff_until", _l("Backing off until"), ScalingPolicy.backoff_until),
        Column("created_at", _l("Created"), ScalingPolicy.created_at),
    ],
    search=[VmGroup.name, K8sCluster.name],
    filters=[
        Filter("mode", _l("Mode"), lambda s, v: s.where(ScalingPolicy.mode == v),
               lambda: list(MODE_LABELS.items())),
        Filter("target_type", _l("Kind"), lambda s, v: s.where(ScalingPolicy.target_type == v),
               lambda: list(TARGET_LABELS.items())),
        Filter("tenant", _l("Tenant"), lambda s, v: s.where(ScalingPolicy.tenant_id == int(v)),
               tenant_choices),
    ],
    default_sort="target",
)
