"""Kubernetes clusters: requests placed all or nothing with HA spread, plugins, service
meshes, bastions, status, scaling, retry and deletion. Pages and the API share these."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.service import record
from portal.auth.access import administered_tenant_ids, roles_of
from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.models import (
    PLUGIN_STATUSES,
    Baremetal,
    BaremetalGroup,
    BastionClusterAssociation,
    K8sCluster,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    MaintainerToMaintainerGroup,
    ResourceMaintainer,
    ServiceMesh,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
    utcnow,
)
from portal.provisioning import jobs
from portal.scheduler import DEFAULT_STRATEGY, STRATEGIES, Constraints
from portal.scheduler.reservation import (
    DEFAULT_ANTI_AFFINITY,
    NodeSpec,
    Preview,
    preview,
    reserve,
)
from portal.text import clean, too_long
from portal.vms.labels import enum_label
from portal.vms.service import (
    RequestInvalid,
    anti_affinity_problem,
    has_quota,
    taken_names,
    validate_name,
)

CONTROL_PLANE_COUNTS = (1, 3, 5)
MAX_WORKERS = 200
MAX_DESCRIPTION = 2000
DEFAULT_VERSIONS = ("1.31.2", "1.30.5", "1.29.9")
VERSION_PATTERN = re.compile(r"^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class CataloguePlugin:
    name: str
    category: str
    default_version: str
    summary: str


# What the wizard offers; each with the version installed unless the request says another.
CATALOGUE = {
    p.name: p
    for p in (
        CataloguePlugin("calico", "network", "3.28.1", _l("Calico CNI with network policy")),
        CataloguePlugin("cilium", "network", "1.16.1", _l("Cilium eBPF CNI")),
        CataloguePlugin("flannel", "network", "0.25.6", _l("Flannel overlay CNI")),
        CataloguePlugin("prometheus", "monitoring", "2.54.1", _l("Prometheus metrics")),
        CataloguePlugin("loki", "monitoring", "3.1.1", _l("Loki log aggregation")),
        CataloguePlugin("longhorn", "storage", "1.7.1", _l("Longhorn block storage")),
        CataloguePlugin("rook-ceph", "storage", "1.15.3", _l("Rook Ceph storage")),
        CataloguePlugin("ingress-nginx", "ingress", "1.11.2", _l("NGINX ingress controller")),
        CataloguePlugin("traefik", "ingress", "3.1.4", _l("Traefik ingress")),
        CataloguePlugin("cert-manager", "other", "1.15.3", _l("Certificates from ACME/CA")),
    )
}


class ClusterError(ValueError):
    """An action on a cluster that cannot be carried out; the message says why."""


def supported_versions() -> tuple[str, ...]:
    return tuple(current_app.config.get("PORTAL_K8S_VERSIONS") or DEFAULT_VERSIONS)


@dataclass
class ClusterRequest:
    tenant: Tenant
    group: BaremetalGroup
    name: str
    version: str
    control_planes: int
    control_plane_flavor: VirtualMachineSpecification
    workers: int
    worker_flavor: VirtualMachineSpecification | None
    plugins: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    primary_mesh: ServiceMesh | None = None
    secondary_mesh: ServiceMesh | None = None
    bastion_vm: VirtualMachine | None = None
    bastion_flavor: VirtualMachineSpecification | None = None  # a new bastion
    strategy: str = DEFAULT_STRATEGY
    description: str = ""
    anti_affinity: str = DEFAULT_ANTI_AFFINITY

    @property
    def nodes(self) -> list[NodeSpec]:
        nodes = [
            NodeSpec(f"{self.name}-cp-{i}", "control-plane", self.control_plane_flavor)
            for i in range(1, self.control_planes + 1)
        ]
        nodes += [
            NodeSpec(f"{self.name}-worker-{i}", "worker", self.worker_flavor)
            for i in range(1, self.workers + 1)
        ]
        if self.bastion_flavor is not None:
            nodes.append(
                NodeSpec(
                    f"{self.name}-bastion", "bastion", self.bastion_flavor, cluster_member=False
                )
            )
        return nodes


def _flavor(flavor_id, field_name, errors, required=True):
    flavor = (
        db.session.get(VirtualMachineSpecification, flavor_id)
        if isinstance(flavor_id, int)
        else None
    )
    if flavor is None:
        if required:
            errors[field_name] = _("Choose a flavor.")
        return None
    if not flavor.is_active:
        errors[field_name] = _("Flavor %(flavor)s is retired: choose an active flavor.",
                                flavor=flavor.name)
        return None
    return flavor


def plugin_version_problem(version: str) -> str | None:
    if not version or len(version) > 32 or not VERSION_PATTERN.match(version):
        return _("%(version)s is not a version (expected e.g. 1.16.1).",
                 version=version or _("(empty)"))
    return None


def check_plugins(plugins: list[tuple[str, str]]) -> str | None:
    """Why this set of plugins cannot be installed together, or None."""
    seen: dict[str, str] = {}
    for name, version in plugins:
        if name not in CATALOGUE:
            return _("Unknown plugin %(name)s; the catalogue has %(known)s.", name=repr(name),
                     known=", ".join(sorted(CATALOGUE)))
        problem = plugin_version_problem(version)
        if problem:
            return f"{name}: {problem}"
        category = CATALOGUE[name].category
        if category == "network" and "network" in seen.values():
            other = next(n for n, c in seen.items() if c == "network")
            return _("One network plugin per cluster: %(other)s and %(name)s would both be the "
                     "CNI.", other=other, name=name)
        if name in seen:
            return _("%(name)s is listed twice.", name=name)
        seen[name] = category
    return None


def build_request(
    user: User,
    *,
    tenant_id,
    group_id,
    name: str,
    version: str,
    control_planes,
    control_plane_flavor_id,
    workers,
    worker_flavor_id,
    plugins: list[tuple[str, str]] = (),
    primary_mesh_id=None,
    secondary_mesh_id=None,
    bastion: str = "none",  # none | existing | new
    bastion_vm_id=None,
    bastion_flavor_id=None,
    strategy: str | None = None,
    description: str = "",
    check_names: bool = True,
    anti_affinity: str | None = None,
) -> ClusterRequest:
    """A ClusterRequest the user may make, or RequestInvalid naming every bad field."""
    errors: dict[str, str] = {}
    allowed = administered_tenant_ids(user)
    tenant = db.session.get(Tenant, tenant_id) if isinstance(tenant_id, int) else None
    if tenant is None or (allowed is not None and tenant.id not in allowed):
        errors["tenant_id"] = _("Choose one of your tenants.")
        tenant = None
    group = db.session.get(BaremetalGroup, group_id) if isinstance(group_id, int) else None
    if group is None:
        errors["group_id"] = _("Choose a group.")
    elif tenant is not None and not has_quota(tenant.id, group.id):
        errors["group_id"] = _("Tenant %(tenant)s has no quota in this group.",
                               tenant=tenant.name)
    name = clean(name)
    problem = validate_name(name, "cluster") or (
        _("A cluster name has at most 40 characters (its nodes are named after it).")
        if len(name) > 40
        else None
    )
    if problem:
        errors["name"] = problem
    description = clean(description)
    if problem := too_long(description, MAX_DESCRIPTION):
        errors["description"] = problem
    if version not in supported_versions():
        errors["version"] = _("Choose a supported version: %(versions)s.",
                              versions=", ".join(supported_versions()))
    if control_planes not in CONTROL_PLANE_COUNTS:
        errors["control_planes"] = _("A cluster has 1, 3 or 5 control planes.")
    cp_flavor = _flavor(control_plane_flavor_id, "control_plane_flavor_id", errors)
    if not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
        errors["workers"] = _("Ask for 0 to %(max)s workers.", max=MAX_WORKERS)
        workers = 0
    worker_flavor = _flavor(worker_flavor_id, "worker_flavor_id", errors, required=workers > 0)
    plugins = [
        (
            n.strip(),
            (v or "").strip()
            or (CATALOGUE[n.strip()].default_version if n.strip() in CATALOGUE else ""),
        )
        for n, v in plugins
    ]
    problem = check_plugins(plugins)
    if problem:
        errors["plugins"] = problem
    primary = (
        db.session.get(ServiceMesh, primary_mesh_id) if isinstance(primary_mesh_id, int) else None
    )
    secondary = (
        db.session.get(ServiceMesh, secondary_mesh_id)
        if isinstance(secondary_mesh_id, int)
        else None
    )
    if primary_mesh_id not in (None, "") and primary is None:
        errors["primary_mesh_id"] = _("Choose an existing service mesh.")
    if secondary_mesh_id not in (None, "") and secondary is None:
        errors["secondary_mesh_id"] = _("Choose an existing service mesh.")
    if secondary is not None and primary is None:
        errors["secondary_mesh_id"] = _("Choose a primary mesh before a secondary one.")
    if secondary is not None and primary is not None and secondary.id == primary.id:
        errors["secondary_mesh_id"] = _("The secondary mesh must differ from the primary.")
    bastion_vm = bastion_flavor = None
    if bastion == "existing":
        bastion_vm = (
            db.session.get(VirtualMachine, bastion_vm_id)
            if isinstance(bastion_vm_id, int)
            else None
        )
        if (
            bastion_vm is None
            or bastion_vm.status == "deleted"
            or (tenant is not None and bastion_vm.tenant_id != tenant.id)
        ):
            errors["bastion_vm_id"] = _("Choose a live VM of the same tenant as the bastion.")
            bastion_vm = None
    elif bastion == "new":
        bastion_flavor = _flavor(bastion_flavor_id, "bastion_flavor_id", errors)
    elif bastion != "none":
        errors["bastion"] = _("Choose none, an existing VM, or a new bastion.")
    strategy = strategy or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        errors["strategy"] = _("Unknown strategy; choose one of %(known)s.",
                               known=", ".join(sorted(STRATEGIES)))
    anti_affinity = anti_affinity or DEFAULT_ANTI_AFFINITY
    if problem := anti_affinity_problem(anti_affinity):
        errors["anti_affinity"] = problem
    if errors:
        raise RequestInvalid(errors)
    request = ClusterRequest(
        tenant,
        group,
        name,
        version,
        control_planes,
        cp_flavor,
        workers,
        worker_flavor,
        plugins,
        primary,
        secondary,
        bastion_vm,
        bastion_flavor,
        strategy,
        description,
        anti_affinity,
    )
    if check_names:
        if _live_cluster_named(tenant.id, name):
            raise RequestInvalid(
                {"name": _("Tenant %(tenant)s already has a cluster named %(name)s.",
                           tenant=tenant.name, name=name)}
            )
        taken = taken_names(tenant.id, [n.name for n in request.nodes])
        if taken:
            raise RequestInvalid(
                {
                    "name": _("Tenant %(tenant)s already has VMs named %(names)s: choose "
                              "another cluster name.", tenant=tenant.name,
                              names=", ".join(sorted(taken)[:5]))
                }
            )
    return request


def _live_cluster_named(tenant_id: int, name: str) -> bool:
    return (
        db.session.scalar(
            select(K8sCluster.id).where(
                K8sCluster.tenant_id == tenant_id,
                K8sCluster.name == name,
                K8sCluster.status != "deleted",
            )
        )
        is not None
    )


def preview_cluster(request: ClusterRequest) -> Preview:
    return preview(
        request.tenant,
        request.group,
        request.nodes,
        request.strategy,
        Constraints(),
        request.anti_affinity,
    )


def create_cluster(request: ClusterRequest, user: User) -> K8sCluster:
    """Reserve every node in one transaction with the cluster, its plugins, mesh links and
    bastion; all or nothing (PlacementRefused otherwise)."""
    cluster = K8sCluster(
        name=request.name,
        tenant_id=request.tenant.id,
        group_id=request.group.id,
        version=request.version,
        status="provisioning",
        description=request.description,
    )

    def with_parts(vms: list[VirtualMachine]) -> None:
        db.session.flush()
        for name, version in request.plugins:
            db.session.add(
                K8sClusterPlugin(
                    cluster_id=cluster.id,
                    name=name,
                    version=version,
                    category=CATALOGUE[name].category,
                )
            )
        for mesh, role in (
            (request.primary_mesh, "primary"),
            (request.secondary_mesh, "secondary"),
        ):
            if mesh is not None:
                db.session.add(
                    K8sClusterToServiceMesh(
                        cluster_id=cluster.id, service_mesh_id=mesh.id, role=role
                    )
                )
        bastion = request.bastion_vm or next((vm for vm in vms if vm.role == "bastion"), None)
        if bastion is not None:
            db.session.add(
                BastionClusterAssociation(
                    vm_id=bastion.id, cluster_id=cluster.id, tenant_id=cluster.tenant_id,
                    created_with_cluster=request.bastion_vm is None,
                )
            )
        # Numbers and names only: portal/audit/presenter.py words them in the reader's
        # language.
        changes = {
            "version": {"from": None, "to": cluster.version},
            "control_planes": {"from": None, "to": request.control_planes},
            "workers": {"from": None, "to": request.workers},
        }
        if request.plugins:
            changes["plugins"] = {"from": None, "to": [n for n, _ in request.plugins]}
        record("create", "k8s_cluster", cluster.id, cluster.name, changes, user=user)

    reserve(
        request.tenant,
        request.group,
        request.nodes,
        user=user,
        strategy=request.strategy,
        cluster=cluster,
        before_commit=with_parts,
        anti_affinity=request.anti_affinity,
    )
    return cluster


# --- lifecycle ---------------------------------------------------------------------------


def live_nodes(cluster: K8sCluster) -> list[VirtualMachine]:
    return [vm for vm in cluster_nodes(cluster) if vm.status != "deleted"]


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
            .order_by(VirtualMachine.role, VirtualMachine.id)
        )
    )


def progress(cluster: K8sCluster, nodes: list[VirtualMachine]) -> str:
    """Where the cluster stands, in one plain sentence for its page ("2 of 5 nodes
    ready", "deleting: 3 nodes left")."""
    total = len(nodes)
    count = {status: sum(1 for vm in nodes if vm.status == status)
             for status in ("active", "provisioning", "error", "deleting", "migrating")}

    if cluster.status == "deleted":
        return _("Deleted: every node is gone.")
    if cluster.status == "deleting":
        return (_n("Deleting: %(num)s node left.", "Deleting: %(num)s nodes left.", total)
                if total else _("Deleting: no node left."))
    parts = []
    if count["active"] == total and total:
        parts.append(_n("All %(num)s node ready.", "All %(num)s nodes ready.", total))
    else:
        parts.append(_n("%(active)s of %(num)s node ready.", "%(active)s of %(num)s nodes ready.",
                        total, active=count["active"]))
    if count["provisioning"]:
        parts.append(_("%(n)s being built.", n=count["provisioning"]))
    if count["error"]:
        parts.append(_n("%(num)s node failed: retry them or delete the cluster.",
                        "%(num)s nodes failed: retry them or delete the cluster.", count["error"]))
    if count["deleting"]:
        parts.append(_n("%(num)s node being removed.", "%(num)s nodes being removed.",
                        count["deleting"]))
    if count["migrating"]:
        parts.append(_n("%(num)s node moving to other servers.",
                        "%(num)s nodes moving to other servers.", count["migrating"]))
    if cluster.status in ("maintenance", "offline"):
        parts.append(_("The cluster is %(status)s.", status=enum_label("status", cluster.status)))
    return " ".join(parts)


def _require_live(cluster: K8sCluster) -> None:
    if cluster.status in ("deleting", "deleted"):
        raise ClusterError(_("Cluster %(cluster)s is %(status)s.", cluster=cluster.name,
                             status=enum_label("status", cluster.status)))


def _lock_live(cluster: K8sCluster) -> None:
    """Lock the cluster's row (its nodes' answers lock it too) and check it again."""
    jobs.lock_cluster(cluster.id)
    _require_live(cluster)


def scale_workers(
    cluster: K8sCluster,
    target: int,
    user: User,
    remove: list[int] | None = None,
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
    and_then: Callable[[list[VirtualMachine]], None] | None = None,
) -> list[VirtualMachine]:
    """Up: place the missing workers (all or nothing, through the scheduler), away from the
    cluster's live nodes as ``anti_affinity`` says. Down: delete the chosen workers (or the
    newest ones) through the agent. ``and_then`` gets the workers added or going, inside the
    same transaction (the autoscaler records its decision there)."""
    _require_live(cluster)
    if not isinstance(target, int) or not 0 <= target <= MAX_WORKERS:
        raise ClusterError(_("A cluster has 0 to %(max)s workers.", max=MAX_WORKERS))
    if problem := anti_affinity_problem(anti_affinity):
        raise ClusterError(problem)
    _lock_live(cluster)  # its nodes cannot change under the count below
    workers = [vm for vm in live_nodes(cluster) if vm.role == "worker" and vm.status != "deleting"]
    current = len(workers)
    if target == current:
        raise ClusterError(_n("Cluster %(cluster)s already has %(num)s worker.",
                              "Cluster %(cluster)s already has %(num)s workers.", current,
                              cluster=cluster.name))
    if target < current:
        chosen = _workers_going(workers, target, remove)
        jobs.request_deletes(chosen, user)
        record(
            "scale",
            "k8s_cluster",
            cluster.id,
            cluster.name,
            {"workers": {"from": current, "to": target}},
            user=user,
        )
        if and_then is not None:
            and_then(chosen)
        db.session.commit()
        return chosen
    flavor = workers[0].spec if workers else _last_worker_flavor(cluster)
    if flavor is None or not flavor.is_active:
        raise ClusterError(
            _("No active worker flavor to scale with: this cluster's flavor is retired.")
        )
    numbers = [
        int(m.group(1))
        for vm in db.session.scalars(
            select(VirtualMachine.name).where(VirtualMachine.k8s_cluster_id == cluster.id)
        )
        if (m := re.search(r"-worker-(\d+)$", vm))
    ]
    start = max(numbers, default=0) + 1
    nodes = [
        NodeSpec(f"{cluster.name}-worker-{start + i}", "worker", flavor)
        for i in range(target - current)
    ]
    tenant, group, cluster_id = cluster.tenant, cluster.group, cluster.id
    db.session.commit()

    def follow(vms):
        # The cluster keeps serving while new workers come up; a failed one turns it error.
        record(
            "scale",
            "k8s_cluster",
            cluster_id,
            cluster.name,
            {"workers": {"from": current, "to": target}},
            user=user,
        )
        if and_then is not None:
            and_then(vms)

    return reserve(
        tenant, group, nodes, user=user, cluster=cluster, before_commit=follow,
        anti_affinity=anti_affinity,
    )


def _workers_going(
    workers: list[VirtualMachine], target: int, remove: list[int] | None
) -> list[VirtualMachine]:
    """Which workers a scale-down to ``target`` deletes: the chosen ones, or the newest."""
    current = len(workers)
    by_id = {vm.id: vm for vm in workers}
    chosen = [by_id[i] for i in (remove or []) if i in by_id]
    if remove and len(chosen) != len(remove):
        raise ClusterError(_("Choose workers of this cluster that are not already being "
                             "deleted."))
    if not chosen:
        chosen = sorted(workers, key=lambda vm: vm.id)[target:]
    if len(chosen) != current - target:
        raise ClusterError(
            _("Scaling from %(current)s to %(target)s removes %(going)s workers; %(chosen)s "
              "were chosen.", current=current, target=target, going=current - target,
              chosen=len(chosen))
        )
    return chosen


def workers_going(
    cluster: K8sCluster, target: int | None, remove: list[int] | None = None
) -> list[VirtualMachine]:
    """What scale_workers would delete, to confirm first: nothing for a scale-up; the
    same refusals as scale_workers for a request it would refuse. Changes nothing."""
    _require_live(cluster)
    if not isinstance(target, int) or not 0 <= target <= MAX_WORKERS:
        raise ClusterError(_("A cluster has 0 to %(max)s workers.", max=MAX_WORKERS))
    workers = [vm for vm in live_nodes(cluster) if vm.role == "worker" and vm.status != "deleting"]
    if target >= len(workers):
        return []
    return _workers_going(workers, target, remove)


def _last_worker_flavor(cluster: K8sCluster) -> VirtualMachineSpecification | None:
    return db.session.scalar(
        select(VirtualMachineSpecification)
        .join(VirtualMachine, VirtualMachine.spec_id == VirtualMachineSpecification.id)
        .where(VirtualMachine.k8s_cluster_id == cluster.id, VirtualMachine.role == "worker")
        .order_by(VirtualMachine.id.desc())
        .limit(1)
    )


def retry_failed_nodes(cluster: K8sCluster, user: User) -> list[VirtualMachine]:
    """Place the failed nodes again (all or nothing) and re-provision them."""
    _require_live(cluster)
    failed = [vm for vm in live_nodes(cluster) if vm.status == "error"]
    if not failed:
        raise ClusterError(_("Cluster %(cluster)s has no failed nodes to retry.",
                             cluster=cluster.name))
    nodes = [NodeSpec(vm.name, vm.role, vm.spec) for vm in failed]
    ids = [vm.id for vm in failed]
    tenant, group, cluster_id = cluster.tenant, cluster.group, cluster.id
    db.session.commit()
    return reserve(
        tenant,
        group,
        nodes,
        user=user,
        cluster=cluster,
        reuse=ids,
        before_commit=lambda _vms: jobs.refresh_cluster_status(cluster_id),
    )


@dataclass(frozen=True)
class BastionOffer:
    """A bastion of a cluster being deleted: whether deleting the cluster may take it too
    (``reason`` says why not)."""

    vm: VirtualMachine
    reason: str | None = None

    @property
    def offered(self) -> bool:
        return self.reason is None


def bastion_offers(cluster: K8sCluster) -> list[BastionOffer]:
    """The cluster's live bastions. Only the one built with the cluster, serving no other
    live cluster, may go with it: another was there before and stays."""
    offers = []
    for link in sorted(cluster.bastion_links, key=lambda link: link.vm_id):
        vm = link.vm
        if vm.status in ("deleting", "deleted"):
            continue
        others = sorted(
            db.session.scalars(
                select(K8sCluster.name)
                .join(BastionClusterAssociation,
                      BastionClusterAssociation.cluster_id == K8sCluster.id)
                .where(
                    BastionClusterAssociation.vm_id == vm.id,
                    K8sCluster.id != cluster.id,
                    K8sCluster.status.not_in(("deleting", "deleted")),
                )
            )
        )
        reason = None
        if not link.created_with_cluster:
            reason = _("%(vm)s was an existing VM when it became this cluster's bastion: it "
                       "stays.", vm=vm.name)
        elif others:
            reason = _("%(vm)s also serves %(clusters)s: it stays.", vm=vm.name,
                       clusters=", ".join(others))
        elif vm.status == "migrating":
            reason = _("%(vm)s is moving to another server: delete it once it has.", vm=vm.name)
        offers.append(BastionOffer(vm, reason))
    return offers


def delete_cluster(cluster: K8sCluster, user: User, delete_bastion: bool = True) -> None:
    """Every node goes through the agent; resources are released as each is confirmed and
    the cluster becomes deleted with its last node. With ``delete_bastion``, the bastion
    built with the cluster goes too, unless it serves another cluster (bastion_offers):
    left behind, it would keep holding quota."""
    _require_live(cluster)
    _lock_live(cluster)
    nodes = live_nodes(cluster)
    bastions = [o.vm for o in bastion_offers(cluster) if o.offered] if delete_bastion else []
    moving = [vm.name for vm in nodes if vm.status == "migrating"]
    if moving:
        raise ClusterError(
            _("Nodes of cluster %(cluster)s are moving to other servers (%(nodes)s): delete it "
              "once they have.", cluster=cluster.name, nodes=", ".join(moving))
        )
    before = cluster.status
    db.session.execute(
        update(K8sCluster)
        .where(K8sCluster.id == cluster.id, K8sCluster.status == before)
        .values(status="deleting", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    set_committed_value(cluster, "status", "deleting")
    jobs.emit_cluster_status(cluster, before)
    jobs.request_deletes(
        [vm for vm in nodes if vm.status not in ("deleting", "deleted")] + bastions, user
    )
    changes = {"status": {"from": before, "to": "deleting"}}
    if bastions:
        changes["bastion"] = {"from": ", ".join(vm.name for vm in bastions), "to": "deleting"}
    record("delete", "k8s_cluster", cluster.id, cluster.name, changes, user=user)
    jobs.refresh_cluster_status(cluster.id, locked=True)
    db.session.commit()


OPERATOR_STATUSES = ("active", "maintenance", "offline")


def may_set_status(cluster: K8sCluster, user: User) -> bool:
    """Operators, and maintainers assigned to the cluster (directly or through a group)."""
    roles = roles_of(user)
    if "operator" in roles:
        return True
    if "maintainer" not in roles:
        return False
    maintainer = user.maintainer
    groups = select(MaintainerToMaintainerGroup.group_id).where(
        MaintainerToMaintainerGroup.maintainer_id == maintainer.id
    )
    return (
        db.session.scalar(
            select(func.count(ResourceMaintainer.id)).where(
                ResourceMaintainer.resource_type == "k8s_cluster",
                ResourceMaintainer.resource_id == cluster.id,
                or_(
                    ResourceMaintainer.maintainer_id == maintainer.id,
                    ResourceMaintainer.maintainer_group_id.in_(groups),
                ),
            )
        )
        > 0
    )


def set_status(cluster: K8sCluster, status: str, user: User) -> None:
    _require_live(cluster)
    if status not in OPERATOR_STATUSES:
        raise ClusterError(_("Set the status to one of %(statuses)s.",
                             statuses=", ".join(OPERATOR_STATUSES)))
    if cluster.status in ("provisioning", "error") and status == "active":
        raise ClusterError(
            _("Cluster %(cluster)s is %(status)s: it becomes active when all its nodes are.",
              cluster=cluster.name, status=enum_label("status", cluster.status))
        )
    if status == cluster.status:
        raise ClusterError(_("Cluster %(cluster)s is already %(status)s.", cluster=cluster.name,
                             status=enum_label("status", status)))
    record(
        "status",
        "k8s_cluster",
        cluster.id,
        cluster.name,
        {"status": {"from": cluster.status, "to": status}},
        user=user,
    )
    before, cluster.status = cluster.status, status
    jobs.emit_cluster_status(cluster, before)
    db.session.commit()


# --- plugins, meshes, bastions -------------------------------------------------------------


def add_plugin(cluster: K8sCluster, name: str, version: str, user: User) -> K8sClusterPlugin:
    _require_live(cluster)
    name, version = (name or "").strip(), (version or "").strip()
    if name in CATALOGUE and not version:
        version = CATALOGUE[name].default_version
    existing = [(p.name, p.version) for p in cluster.plugins]
    if any(n == name for n, _ in existing):
        raise ClusterError(_("%(plugin)s is already installed on %(cluster)s: change its "
                             "version.", plugin=name, cluster=cluster.name))
    problem = check_plugins(existing + [(name, version)])
    if problem:
        raise ClusterError(problem)
    plugin = K8sClusterPlugin(
        cluster_id=cluster.id, name=name, version=version, category=CATALOGUE[name].category
    )
    db.session.add(plugin)
    _record_change(cluster, {f"plugin {name}": {"from": None, "to": version}}, user)
    db.session.commit()
    return plugin


def update_plugin(
    cluster: K8sCluster,
    plugin_id: int,
    user: User,
    *,
    version: str | None = None,
    status: str | None = None,
) -> K8sClusterPlugin:
    _require_live(cluster)
    plugin = _plugin(cluster, plugin_id)
    changes = {}
    if version is not None:
        version = version.strip()
        problem = plugin_version_problem(version)
        if problem:
            raise ClusterError(_("%(plugin)s: %(problem)s", plugin=plugin.name, problem=problem))
        changes[f"plugin {plugin.name} version"] = {"from": plugin.version, "to": version}
        plugin.version = version
    if status is not None:
        if status not in PLUGIN_STATUSES:
            raise ClusterError(_("A plugin is %(statuses)s.", statuses=", ".join(PLUGIN_STATUSES)))
        changes[f"plugin {plugin.name} status"] = {"from": plugin.status, "to": status}
        plugin.status = status
    _record_change(cluster, changes, user)
    db.session.commit()
    return plugin


def remove_plugin(cluster: K8sCluster, plugin_id: int, user: User) -> None:
    _require_live(cluster)
    plugin = _plugin(cluster, plugin_id)
    _record_change(cluster, {f"plugin {plugin.name}": {"from": plugin.version, "to": None}}, user)
    db.session.delete(plugin)
    db.session.commit()


def _record_change(cluster: K8sCluster, changes: dict, user: User) -> None:
    """A change to one of the cluster's parts reads in the cluster's own history."""
    record("update", "k8s_cluster", cluster.id, cluster.name, changes, user=user)


def _part(model, part_id, cluster: K8sCluster, what: str):
    """A plugin, mesh binding or bastion link of this cluster, or ClusterError."""
    part = db.session.get(model, part_id) if isinstance(part_id, int) else None
    if part is None or part.cluster_id != cluster.id:
        raise ClusterError({
            "plugin": _("No such plugin on this cluster."),
            "service mesh binding": _("No such service mesh binding on this cluster."),
            "bastion": _("No such bastion on this cluster."),
        }.get(what) or _("No such part on this cluster."))
    return part


def _plugin(cluster: K8sCluster, plugin_id: int) -> K8sClusterPlugin:
    return _part(K8sClusterPlugin, plugin_id, cluster, "plugin")


def bind_mesh(cluster: K8sCluster, mesh_id, role: str, user: User) -> K8sClusterToServiceMesh:
    _require_live(cluster)
    mesh = db.session.get(ServiceMesh, mesh_id) if isinstance(mesh_id, int) else None
    if mesh is None:
        raise ClusterError(_("Choose an existing service mesh."))
    if role not in ("primary", "secondary"):
        raise ClusterError(_("A mesh is bound as primary or secondary."))
    if any(link.service_mesh_id == mesh.id for link in cluster.mesh_links):
        raise ClusterError(_("%(mesh)s is already bound to %(cluster)s.", mesh=mesh.name,
                             cluster=cluster.name))
    if role == "primary":
        _refuse_second_primary(cluster)
    link = K8sClusterToServiceMesh(cluster_id=cluster.id, service_mesh_id=mesh.id, role=role)
    db.session.add(link)
    _record_change(cluster, {f"mesh {mesh.name}": {"from": None, "to": role}}, user)
    db.session.commit()
    return link


def _refuse_second_primary(cluster: K8sCluster, except_link: int | None = None) -> None:
    primary = next(
        (link for link in cluster.mesh_links if link.role == "primary" and link.id != except_link),
        None,
    )
    if primary is not None:
        raise ClusterError(
            _("%(cluster)s already has %(mesh)s as its primary mesh: make it secondary or unbind "
              "it first.", cluster=cluster.name, mesh=primary.service_mesh.name)
        )


def change_mesh_role(cluster: K8sCluster, link_id: int, role: str, user: User) -> None:
    _require_live(cluster)
    link = _mesh_link(cluster, link_id)
    if role not in ("primary", "secondary"):
        raise ClusterError(_("A mesh is bound as primary or secondary."))
    if role == "primary":
        _refuse_second_primary(cluster, except_link=link.id)
    _record_change(
        cluster, {f"mesh {link.service_mesh.name}": {"from": link.role, "to": role}}, user
    )
    link.role = role
    db.session.commit()


def unbind_mesh(cluster: K8sCluster, link_id: int, user: User) -> None:
    _require_live(cluster)
    link = _mesh_link(cluster, link_id)
    _record_change(
        cluster, {f"mesh {link.service_mesh.name}": {"from": link.role, "to": None}}, user
    )
    db.session.delete(link)
    db.session.commit()


def _mesh_link(cluster: K8sCluster, link_id: int) -> K8sClusterToServiceMesh:
    return _part(K8sClusterToServiceMesh, link_id, cluster, "service mesh binding")


def add_bastion(cluster: K8sCluster, vm_id, user: User) -> BastionClusterAssociation:
    _require_live(cluster)
    vm = (
        db.session.scalar(_bastion_vms(cluster).where(VirtualMachine.id == vm_id))
        if isinstance(vm_id, int)
        else None
    )
    if vm is None:
        # Missing, deleted, a node, or another tenant's: one answer, so that the names of
        # other tenants' VMs cannot be probed by id.
        raise ClusterError(
            _("Choose a live VM of %(tenant)s that is not a cluster node as the bastion.",
              tenant=cluster.tenant.name)
        )
    if any(link.vm_id == vm.id for link in cluster.bastion_links):
        raise ClusterError(_("%(vm)s is already a bastion of %(cluster)s.", vm=vm.name,
                             cluster=cluster.name))
    link = BastionClusterAssociation(
        vm_id=vm.id, cluster_id=cluster.id, tenant_id=cluster.tenant_id
    )
    db.session.add(link)
    _record_change(cluster, {"bastion": {"from": None, "to": vm.name}}, user)
    db.session.commit()
    return link


def remove_bastion(cluster: K8sCluster, link_id: int, user: User) -> None:
    link = _part(BastionClusterAssociation, link_id, cluster, "bastion")
    _record_change(cluster, {"bastion": {"from": link.vm.name, "to": None}}, user)
    db.session.delete(link)
    db.session.commit()


def _bastion_vms(cluster: K8sCluster):
    """Live VMs of the cluster's tenant that are no cluster's nodes: what may be a bastion."""
    return select(VirtualMachine).where(
        VirtualMachine.tenant_id == cluster.tenant_id,
        VirtualMachine.status.in_(("active", "provisioning")),
        VirtualMachine.k8s_cluster_id.is_(None),
    )


def bastion_candidates(cluster: K8sCluster) -> list[VirtualMachine]:
    """The VMs add_bastion accepts that are not yet this cluster's bastions."""
    linked = {link.vm_id for link in cluster.bastion_links}
    return [
        vm
        for vm in db.session.scalars(_bastion_vms(cluster).order_by(VirtualMachine.name))
        if vm.id not in linked
    ]
