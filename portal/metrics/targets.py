"""What an agent measures (SPEC 8.4): the servers, running VMs and clusters within its
scope, each with what the portal allocated to it — the ``MetricTarget``s a driver's
``measure()`` takes. Three queries, whatever the estate's size."""

from __future__ import annotations

from sqlalchemy import and_, case, func, select

from portal.extensions import db
from portal.models import Baremetal, BaremetalGroup, K8sCluster, VirtualMachine
from portal.provisioning.drivers import MetricTarget
from portal.provisioning.jobs import ClaimScope

MEASURED_VM_STATUSES = ("active", "migrating")


def _servers_in(scope: ClaimScope | None):
    query = select(Baremetal.id)
    if scope and scope.regions:
        query = query.where(Baremetal.region.in_(scope.regions))
    if scope and scope.dcs:
        query = query.where(Baremetal.dc.in_(scope.dcs))
    if scope and scope.groups:
        query = query.join(BaremetalGroup, BaremetalGroup.id == Baremetal.group_id).where(
            BaremetalGroup.name.in_(scope.groups))
    return query


def targets(scope: ClaimScope | None = None) -> list[MetricTarget]:
    """Servers (not decommissioned), VMs that run (active, migrating) on them, and the
    clusters with a node on them; ordered by type and id."""
    in_scope = _servers_in(scope) if scope else None
    servers = select(Baremetal.id, Baremetal.name, Baremetal.total_cpu,
                     Baremetal.total_memory, Baremetal.total_storage,
                     Baremetal.hypervisor_uri).where(Baremetal.status != "decommissioned")
    if in_scope is not None:
        servers = servers.where(Baremetal.id.in_(in_scope))
    found = [MetricTarget("baremetal", *row) for row in db.session.execute(
        servers.order_by(Baremetal.id))]

    vms = (select(VirtualMachine.id, VirtualMachine.name, VirtualMachine.cpu,
                  VirtualMachine.memory, VirtualMachine.storage, Baremetal.hypervisor_uri,
                  VirtualMachine.baremetal_id)
           .join(Baremetal, Baremetal.id == VirtualMachine.baremetal_id)
           .where(VirtualMachine.status.in_(MEASURED_VM_STATUSES)))
    if in_scope is not None:
        vms = vms.where(VirtualMachine.baremetal_id.in_(in_scope))
    found += [MetricTarget("vm", *row) for row in db.session.execute(
        vms.order_by(VirtualMachine.id))]

    live = VirtualMachine.status != "deleted"
    nodes = (select(K8sCluster.id, K8sCluster.name,
                    func.coalesce(func.sum(VirtualMachine.cpu), 0),
                    func.coalesce(func.sum(VirtualMachine.memory), 0),
                    func.coalesce(func.sum(VirtualMachine.storage), 0),
                    func.count(VirtualMachine.id),
                    func.count(case((VirtualMachine.status == "active", 1))))
             .join(VirtualMachine, and_(VirtualMachine.k8s_cluster_id == K8sCluster.id, live))
             .where(K8sCluster.status != "deleted")
             .group_by(K8sCluster.id, K8sCluster.name))
    if in_scope is not None:
        nodes = nodes.where(K8sCluster.id.in_(
            select(VirtualMachine.k8s_cluster_id).where(
                VirtualMachine.baremetal_id.in_(in_scope), live)))
    found += [MetricTarget("cluster", cluster_id, name, cpu, memory, storage,
                           nodes_total=total, nodes_ready=ready)
              for cluster_id, name, cpu, memory, storage, total, ready
              in db.session.execute(nodes.order_by(K8sCluster.id))]
    db.session.rollback()
    return found
