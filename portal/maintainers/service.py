"""Assignments of maintainers and maintainer groups to resources."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import (
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    Maintainer,
    MaintainerToMaintainerGroup,
    Rack,
    ResourceMaintainer,
    ServiceMesh,
    Tenant,
    VirtualMachine,
)

RESOURCE_MODELS: dict[str, Any] = {
    "rack": Rack,
    "baremetal": Baremetal,
    "baremetal_group": BaremetalGroup,
    "tenant": Tenant,
    "virtual_machine": VirtualMachine,
    "k8s_cluster": K8sCluster,
    "service_mesh": ServiceMesh,
}
RESOURCE_LABELS = {
    "rack": "Racks",
    "baremetal": "Servers",
    "baremetal_group": "Groups",
    "tenant": "Tenants",
    "virtual_machine": "VMs",
    "k8s_cluster": "Clusters",
    "service_mesh": "Service meshes",
}
# Resources in these states come first: they are what someone is being called about.
URGENT_STATUSES = ("error", "maintenance")


@dataclass(frozen=True)
class Assigned:
    assignment: ResourceMaintainer
    resource: Any
    via_group: str | None  # the group's name when assigned through a group

    @property
    def status(self) -> str | None:
        return getattr(self.resource, "status", None)


def load_resources(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """Resolve (type, id) pairs with one query per resource type."""
    ids_by_type: dict[str, set[int]] = defaultdict(set)
    for resource_type, resource_id in pairs:
        ids_by_type[resource_type].add(resource_id)
    found: dict[tuple[str, int], Any] = {}
    for resource_type, ids in ids_by_type.items():
        model = RESOURCE_MODELS[resource_type]
        for obj in db.session.scalars(select(model).where(model.id.in_(ids))):
            found[(resource_type, obj.id)] = obj
    return found


def assignments_of(maintainer: Maintainer) -> dict[str, list[Assigned]]:
    """Everything assigned to a maintainer, directly or through their groups, grouped by
    resource type, urgent resources first."""
    group_ids = select(MaintainerToMaintainerGroup.group_id).where(
        MaintainerToMaintainerGroup.maintainer_id == maintainer.id
    )
    rows = db.session.scalars(
        select(ResourceMaintainer)
        .options(joinedload(ResourceMaintainer.maintainer_group))
        .where(
            or_(
                ResourceMaintainer.maintainer_id == maintainer.id,
                ResourceMaintainer.maintainer_group_id.in_(group_ids),
            )
        )
    ).all()
    resources = load_resources([(r.resource_type, r.resource_id) for r in rows])
    grouped: dict[str, list[Assigned]] = defaultdict(list)
    for row in rows:
        resource = resources.get((row.resource_type, row.resource_id))
        if resource is None:
            continue
        via = row.maintainer_group.name if row.maintainer_group is not None else None
        grouped[row.resource_type].append(Assigned(row, resource, via))
    for items in grouped.values():
        items.sort(key=lambda a: (a.status not in URGENT_STATUSES, a.resource.name))
    return {t: grouped[t] for t in RESOURCE_MODELS if t in grouped}
