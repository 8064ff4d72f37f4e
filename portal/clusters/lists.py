"""The cluster list: what the page and the API both run."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import visible_only
from portal.i18n import _l
from portal.models import CLUSTER_STATUSES, BaremetalGroup, K8sCluster, Tenant
from portal.vms.labels import labelled_choices
from portal.web.listing import Column, Filter, Listing
from portal.web.options import maintainer_filters, tenant_choices

clusters = Listing(
    name="clusters",
    statement=lambda: visible_only(
        select(K8sCluster)
        .options(joinedload(K8sCluster.tenant), joinedload(K8sCluster.group)),
        K8sCluster,
    ),
    columns=[
        Column("name", _l("Name"), K8sCluster.name),
        Column("tenant", _l("Tenant"), Tenant.name, value=lambda c: c.tenant.name,
               join=K8sCluster.tenant),
        Column("group", _l("Group"), BaremetalGroup.name, value=lambda c: c.group.name,
               join=K8sCluster.group),
        Column("version", _l("Version"), K8sCluster.version),
        Column("status", _l("Status"), K8sCluster.status),
        Column("created_at", _l("Created"), K8sCluster.created_at),
    ],
    search=[K8sCluster.name, K8sCluster.version],
    filters=[
        Filter(
            "status",
            _l("Status"),
            lambda s, v: s.where(K8sCluster.status == v),
            labelled_choices("status", CLUSTER_STATUSES),
        ),
        Filter(
            "tenant", _l("Tenant"), lambda s, v: s.where(K8sCluster.tenant_id == int(v)),
            tenant_choices,
        ),
        *maintainer_filters("k8s_cluster", K8sCluster.id),
    ],
)
