"""VM requests: validate what a user asked for, preview its placement, reserve it; delete
and retry. Pages and the API call these same functions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select

from portal.auth.access import administered_tenant_ids
from portal.extensions import db
from portal.models import (
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    ProvisionJob,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
)
from portal.provisioning import jobs
from portal.scheduler import DEFAULT_STRATEGY, STRATEGIES, Constraints
from portal.scheduler.data import ANTI_AFFINITY
from portal.scheduler.reservation import (
    DEFAULT_ANTI_AFFINITY,
    NO_CONSTRAINTS,
    NodeSpec,
    Preview,
    preview,
    reserve,
)
from portal.text import clean, name_problem

# Letters of any script (so 資料庫-01 is fine), digits, '.', '-' and '_'; starts with a
# letter or digit; short enough to be a host name.
NAME_PATTERN = re.compile(r"^[^\W_][\w.-]*$")
MAX_NAME_LENGTH = 63
MAX_COUNT = 50


class RequestInvalid(ValueError):
    """The request is malformed; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class VmRequest:
    tenant: Tenant
    group: BaremetalGroup
    flavor: VirtualMachineSpecification
    name: str
    count: int = 1
    strategy: str = DEFAULT_STRATEGY
    constraints: Constraints = field(default_factory=Constraints)
    anti_affinity: str = DEFAULT_ANTI_AFFINITY

    @property
    def names(self) -> list[str]:
        """One name, or name-1 … name-N for several identical VMs."""
        if self.count == 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.count + 1)]

    @property
    def nodes(self) -> list[NodeSpec]:
        return [NodeSpec(name, "standalone", self.flavor) for name in self.names]


def validate_name(name: str, what: str = "VM") -> str | None:
    """Why the name is not acceptable, or None."""
    if not name:
        return f"Give the {what} a name."
    if hidden := name_problem(name, f"The {what} name"):
        return hidden
    if len(name) > MAX_NAME_LENGTH:
        return f"A {what} name has at most {MAX_NAME_LENGTH} characters (this one has {len(name)})."
    if not NAME_PATTERN.match(name):
        return (
            f"A {what} name starts with a letter or digit and holds only letters, digits, "
            "'.', '-' and '_' (no spaces)."
        )
    return None


def _get(model, object_id):
    return db.session.get(model, object_id) if isinstance(object_id, int) else None


def build_request(
    user: User,
    *,
    tenant_id: int | None,
    group_id: int | None,
    spec_id: int | None,
    name: str,
    count: int | None = 1,
    strategy: str | None = None,
    constraints: Constraints = NO_CONSTRAINTS,
    check_names: bool = True,
    anti_affinity: str | None = None,
) -> VmRequest:
    """A VmRequest the user may make, or RequestInvalid naming every bad field. A tenant
    the user does not administer is reported exactly like one that does not exist."""
    errors: dict[str, str] = {}
    allowed = administered_tenant_ids(user)
    tenant = _get(Tenant, tenant_id)
    if tenant is None or (allowed is not None and tenant.id not in allowed):
        errors["tenant_id"] = "Choose one of your tenants."
        tenant = None
    group = _get(BaremetalGroup, group_id)
    if group is None:
        errors["group_id"] = "Choose a group."
    elif tenant is not None and not has_quota(tenant.id, group.id):
        # Not naming the group: a tenant admin may not know of groups without its quota.
        errors["group_id"] = (
            f"Tenant {tenant.name} has no quota in this group: choose a group where it has one."
        )
    flavor = _get(VirtualMachineSpecification, spec_id)
    if flavor is None:
        errors["spec_id"] = "Choose a flavor."
    elif not flavor.is_active:
        errors["spec_id"] = f"Flavor {flavor.name} is retired: choose an active flavor."
    name = clean(name)
    problem = validate_name(name)
    if problem:
        errors["name"] = problem
    if count is None or not 1 <= count <= MAX_COUNT:
        errors["count"] = f"Ask for 1 to {MAX_COUNT} VMs at a time."
    strategy = strategy or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        errors["strategy"] = f"Unknown strategy; choose one of {', '.join(sorted(STRATEGIES))}."
    anti_affinity = anti_affinity or DEFAULT_ANTI_AFFINITY
    if problem := anti_affinity_problem(anti_affinity):
        errors["anti_affinity"] = problem
    if errors:
        raise RequestInvalid(errors)
    request = VmRequest(tenant, group, flavor, name, count, strategy, constraints, anti_affinity)
    if check_names:
        taken = taken_names(tenant.id, request.names)
        if taken:
            errors["name"] = (
                f"Tenant {tenant.name} already has a VM named {', '.join(sorted(taken))}."
            )
            raise RequestInvalid(errors)
    return request


def anti_affinity_problem(value: str) -> str | None:
    if value not in ANTI_AFFINITY:
        return (
            "Choose how the VMs share servers: soft (spread when room allows), "
            "hard (strictly one per server) or none (pack densely)."
        )
    return None


def has_quota(tenant_id: int, group_id: int) -> bool:
    return (
        db.session.scalar(
            select(BaremetalGroupTenantQuota.id).where(
                BaremetalGroupTenantQuota.tenant_id == tenant_id,
                BaremetalGroupTenantQuota.group_id == group_id,
            )
        )
        is not None
    )


def taken_names(tenant_id: int, names: list[str]) -> set[str]:
    return set(
        db.session.scalars(
            select(VirtualMachine.name).where(
                VirtualMachine.tenant_id == tenant_id,
                VirtualMachine.name.in_(names),
                VirtualMachine.status != "deleted",
            )
        )
    )


def preview_vms(request: VmRequest) -> Preview:
    return preview(
        request.tenant,
        request.group,
        request.nodes,
        request.strategy,
        request.constraints,
        request.anti_affinity,
    )


def create_vms(request: VmRequest, user: User) -> list[VirtualMachine]:
    """Reserve and create the VMs, all or nothing (raises PlacementRefused)."""
    return reserve(
        request.tenant,
        request.group,
        request.nodes,
        user=user,
        strategy=request.strategy,
        constraints=request.constraints,
        anti_affinity=request.anti_affinity,
    )


def delete_vm(vm: VirtualMachine, user: User) -> None:
    if vm.k8s_cluster_id is not None:
        raise jobs.JobError(
            f"VM {vm.name} is a node of cluster {vm.cluster.name}: scale or delete the cluster "
            "instead."
        )
    from portal.vm_groups.service import group_of_vm

    if (vm_group := group_of_vm(vm.id)) is not None:
        raise jobs.JobError(
            f"VM {vm.name} is a member of VM group {vm_group.name}: resize or delete the group "
            "instead."
        )
    jobs.request_delete(vm, user)
    db.session.commit()


def retry_vm(vm: VirtualMachine, user: User) -> VirtualMachine:
    """Place a failed VM again (anywhere in its group with room) and re-provision it."""
    if vm.status == "deleting":
        jobs.retry_delete(vm, user)
        db.session.commit()
        return vm
    if vm.status != "error":
        raise jobs.JobError(f"VM {vm.name} is {vm.status}: only a failed VM can be retried.")
    group = vm.baremetal.group if vm.baremetal is not None else None
    if group is None and vm.cluster is not None:
        group = vm.cluster.group
    if group is None:
        raise jobs.JobError(f"VM {vm.name} has no group left to place it in.")
    node = NodeSpec(vm.name, vm.role, vm.spec)
    tenant, vm_id, cluster = vm.tenant, vm.id, vm.cluster
    db.session.commit()
    cluster_id = cluster.id if cluster is not None else None

    def follow_cluster(_vms):
        if cluster_id is not None:
            jobs.refresh_cluster_status(cluster_id)

    (placed,) = reserve(
        tenant,
        group,
        [node],
        user=user,
        reuse=[vm_id],
        cluster=cluster,
        before_commit=follow_cluster,
    )
    return placed


def vm_jobs(vm: VirtualMachine) -> list[ProvisionJob]:
    return list(
        db.session.scalars(
            select(ProvisionJob).where(ProvisionJob.vm_id == vm.id).order_by(ProvisionJob.id.desc())
        )
    )


@dataclass
class WizardOptions:
    tenants: list[tuple[int, str]]
    groups: list[tuple[int, str]]
    flavors: list[tuple[int, str]]
    regions: list[str]
    dcs: list[str]
    racks: list[str]


def wizard_options(user: User, tenant_id: int | None, group_id: int | None) -> WizardOptions:
    """Choices for the wizard: the user's tenants; the chosen tenant's groups with quota,
    headroom in the label; active flavors; where the group's servers are."""
    from portal.models import Baremetal, Rack
    from portal.tenants.quotas import quota_usages

    allowed = administered_tenant_ids(user)
    stmt = select(Tenant).order_by(Tenant.name)
    if allowed is not None:
        stmt = stmt.where(Tenant.id.in_(allowed))
    tenants = [(t.id, t.name) for t in db.session.scalars(stmt)]
    groups = []
    if tenant_id is not None and any(t[0] == tenant_id for t in tenants):
        quotas = db.session.scalars(
            select(BaremetalGroupTenantQuota).where(
                BaremetalGroupTenantQuota.tenant_id == tenant_id
            )
        ).all()
        for usage in sorted(quota_usages(list(quotas)), key=lambda u: u.quota.group.name):
            left = []
            for d, unit in (("cpu", "CPU"), ("memory", "GiB memory")):
                remaining = usage.dimensions[d].remaining
                left.append(f"{'no limit' if remaining is None else remaining} {unit}")
            groups.append(
                (usage.quota.group_id, f"{usage.quota.group.name} — left: {', '.join(left)}")
            )
    flavors = [
        (f.id, f"{f.name} — {f.cpu} CPU, {f.memory} GiB, {f.storage} GiB disk (gen {f.generation})")
        for f in db.session.scalars(
            select(VirtualMachineSpecification)
            .where(VirtualMachineSpecification.is_active.is_(True))
            .order_by(
                VirtualMachineSpecification.cpu,
                VirtualMachineSpecification.memory,
                VirtualMachineSpecification.name,
            )
        )
    ]
    regions: list[str] = []
    dcs: list[str] = []
    racks: list[str] = []
    if group_id is not None:
        rows = db.session.execute(
            select(Baremetal.region, Baremetal.dc, Rack.name)
            .outerjoin(Rack, Baremetal.rack_id == Rack.id)
            .where(Baremetal.group_id == group_id)
            .distinct()
        ).all()
        regions = sorted({r[0] for r in rows if r[0]})
        dcs = sorted({r[1] for r in rows if r[1]})
        racks = sorted({r[2] for r in rows if r[2]})
    return WizardOptions(tenants, groups, flavors, regions, dcs, racks)
