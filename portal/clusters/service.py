"""Kubernetes clusters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import Baremetal, K8sCluster, VirtualMachine


def cluster_nodes(cluster: K8sCluster) -> list[VirtualMachine]:
    """Live nodes with their server and rack, control planes first."""
    return list(
        db.session.scalars(
            select(VirtualMachine)
            .options(
                joinedload(VirtualMachine.baremetal).joinedload(Baremetal.rack),
                joinedload(VirtualMachine.spec),
            )
            .where(VirtualMachine.k8s_cluster_id == cluster.id, VirtualMachine.status != "deleted")
            .order_by(VirtualMachine.role, VirtualMachine.name)
        )
    )
