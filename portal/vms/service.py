"""VM requests: validate what a user asked for, preview its placement, reserve it; delete
and retry. Pages and the API call these same functions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import format_decimal
from sqlalchemy import select

from portal.auth.access import administered_tenant_ids
from portal.extensions import db
from portal.i18n import _, _n
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
from portal.vms.labels import enum_label

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
class Unplaceable:
    """What a wizard's live preview shows for a request that is not valid yet: the reasons,
    so the reader sees what to fix instead of the starting hint."""

    reasons: list[str]
    ok = False
    invalid = True


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


def _name_sentences(what: str) -> tuple[str, str, str, str]:
    """Empty, "the name", too long, bad characters — whole sentences per kind of object, so
    that each language words them its own way."""
    if what == "cluster":
        return (_("Give the cluster a name."), _("The cluster name"),
                _("A cluster name has at most %(max)s characters (this one has %(n)s)."),
                _("A cluster name starts with a letter or digit and holds only letters, "
                  "digits, '.', '-' and '_' (no spaces)."))
    if what == "server":
        return (_("Give the server a name."), _("The server name"),
                _("A server name has at most %(max)s characters (this one has %(n)s)."),
                _("A server name starts with a letter or digit and holds only letters, "
                  "digits, '.', '-' and '_' (no spaces)."))
    if what == "VM group":
        return (_("Give the VM group a name."), _("The VM group name"),
                _("A VM group name has at most %(max)s characters (this one has %(n)s)."),
                _("A VM group name starts with a letter or digit and holds only letters, "
                  "digits, '.', '-' and '_' (no spaces)."))
    return (_("Give the VM a name."), _("The VM name"),
            _("A VM name has at most %(max)s characters (this one has %(n)s)."),
            _("A VM name starts with a letter or digit and holds only letters, digits, "
              "'.', '-' and '_' (no spaces)."))


def validate_name(name: str, what: str = "VM") -> str | None:
    """Why the name is not acceptable, or None. ``what``: "VM", "cluster", "server" or
    "VM group"."""
    empty, the_name, too_long, pattern = _name_sentences(what)
    if not name:
        return empty
    if hidden := name_problem(name, the_name):
        return hidden
    if len(name) > MAX_NAME_LENGTH:
        return too_long % {"max": MAX_NAME_LENGTH, "n": len(name)}
    if not NAME_PATTERN.match(name):
        return pattern
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
        errors["tenant_id"] = _("Choose one of your tenants.")
        tenant = None
    group = _get(BaremetalGroup, group_id)
    if group is None:
        errors["group_id"] = _("Choose a group.")
    elif tenant is not None and not has_quota(tenant.id, group.id):
        # Not naming the group: a tenant admin may not know of groups without its quota.
        errors["group_id"] = (
            _("Tenant %(tenant)s has no quota in this group: choose a group where it has one.",
              tenant=tenant.name)
        )
    flavor = _get(VirtualMachineSpecification, spec_id)
    if flavor is None:
        errors["spec_id"] = _("Choose a flavor.")
    elif not flavor.is_active:
        errors["spec_id"] = _("Flavor %(flavor)s is retired: choose an active flavor.",
                              flavor=flavor.name)
    name = clean(name)
    problem = validate_name(name)
    if problem:
        errors["name"] = problem
    if count is None or not 1 <= count <= MAX_COUNT:
        errors["count"] = _("Ask for 1 to %(max)s VMs at a time.", max=MAX_COUNT)
    strategy = strategy or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        errors["strategy"] = _("Unknown strategy; choose one of %(known)s.",
                               known=", ".join(sorted(STRATEGIES)))
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
                _n("Tenant %(tenant)s already has a VM named %(names)s.",
                   "Tenant %(tenant)s already has VMs named %(names)s.", len(taken),
                   tenant=tenant.name, names=", ".join(sorted(taken)))
            )
            raise RequestInvalid(errors)
    return request


def anti_affinity_problem(value: str) -> str | None:
    if value not in ANTI_AFFINITY:
        return _("Choose how the VMs share servers: soft (spread when room allows), "
                 "hard (strictly one per server) or none (pack densely).")
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
        raise jobs.JobError(_(
            "VM %(vm)s is a node of cluster %(cluster)s: scale or delete the cluster instead.",
            vm=vm.name, cluster=vm.cluster.name))
    from portal.vm_groups.service import group_of_vm

    if (vm_group := group_of_vm(vm.id)) is not None:
        raise jobs.JobError(_(
            "VM %(vm)s is a member of VM group %(group)s: resize or delete the group instead.",
            vm=vm.name, group=vm_group.name))
    jobs.request_delete(vm, user)
    db.session.commit()


def retry_vm(vm: VirtualMachine, user: User) -> VirtualMachine:
    """Place a failed VM again (anywhere in its group with room) and re-provision it."""
    if vm.status == "deleting":
        jobs.retry_delete(vm, user)
        db.session.commit()
        return vm
    if vm.status != "error":
        raise jobs.JobError(_("VM %(vm)s is %(status)s: only a failed VM can be retried.",
                               vm=vm.name, status=enum_label("status", vm.status)))
    group = vm.baremetal.group if vm.baremetal is not None else None
    if group is None and vm.cluster is not None:
        group = vm.cluster.group
    if group is None:
        raise jobs.JobError(_("VM %(vm)s has no group left to place it in.", vm=vm.name))
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
    # Ids and names, not objects: an operator's select lists every tenant.
    stmt = select(Tenant.id, Tenant.name).order_by(Tenant.name)
    if allowed is not None:
        stmt = stmt.where(Tenant.id.in_(allowed))
    tenants = [(t.id, t.name) for t in db.session.execute(stmt)]
    groups = []
    if tenant_id is not None and any(t[0] == tenant_id for t in tenants):
        quotas = db.session.scalars(
            select(BaremetalGroupTenantQuota).where(
                BaremetalGroupTenantQuota.tenant_id == tenant_id
            )
        ).all()
        for usage in sorted(quota_usages(list(quotas)), key=lambda u: u.quota.group.name):
            cpu, memory = (usage.dimensions[d].remaining for d in ("cpu", "memory"))
            left = _("%(group)s — left: %(cpu)s CPU, %(memory)s GiB memory",
                     group=usage.quota.group.name,
                     cpu=_("no limit") if cpu is None else format_decimal(cpu),
                     memory=_("no limit") if memory is None else format_decimal(memory))
            groups.append((usage.quota.group_id, left))
    flavors = [
        (f.id, _("%(name)s — %(cpu)s CPU, %(memory)s GiB, %(storage)s GiB disk "
                 "(gen %(generation)s)", name=f.name, cpu=f.cpu, memory=f.memory,
                 storage=f.storage, generation=f.generation))
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
