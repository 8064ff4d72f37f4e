from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import get_or_404, requires, scoped
from portal.clusters.service import cluster_nodes
from portal.models import CLUSTER_STATUSES, BaremetalGroup, K8sCluster, Tenant
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices, tenant_choices

bp = Blueprint("clusters", __name__, url_prefix="/clusters")

clusters = Listing(
    name="clusters",
    statement=lambda: scoped(
        select(K8sCluster)
        .outerjoin(K8sCluster.tenant)
        .outerjoin(K8sCluster.group)
        .options(joinedload(K8sCluster.tenant), joinedload(K8sCluster.group)),
        K8sCluster.tenant_id,
    ),
    columns=[
        Column("name", "Name", K8sCluster.name),
        Column("tenant", "Tenant", Tenant.name, value=lambda c: c.tenant.name),
        Column("group", "Group", BaremetalGroup.name, value=lambda c: c.group.name),
        Column("version", "Version", K8sCluster.version),
        Column("status", "Status", K8sCluster.status),
        Column("created_at", "Created", K8sCluster.created_at),
    ],
    search=[K8sCluster.name, K8sCluster.version],
    filters=[
        Filter("status", "Status", lambda s, v: s.where(K8sCluster.status == v),
               lambda: enum_choices(CLUSTER_STATUSES)),
        Filter("tenant", "Tenant", lambda s, v: s.where(K8sCluster.tenant_id == int(v)),
               tenant_choices),
    ],
)


@bp.route("/")
@requires("clusters")
def list():  # noqa: A001
    return list_page(clusters, "clusters/list.html")


@bp.route("/<int:cluster_id>")
@requires("clusters")
def detail(cluster_id: int):
    cluster = get_or_404(K8sCluster, cluster_id, K8sCluster.tenant_id)
    nodes = cluster_nodes(cluster)
    return render_template("clusters/detail.html", cluster=cluster, nodes=nodes)
