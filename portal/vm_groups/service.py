"""VM groups (SPEC 8.5): a named set of identical VMs of one tenant in one group, members
``<name>-1 … <name>-N`` spread over servers. Creating one places every member or none;
growing places the new members through the scheduler, away from the members already
there; shrinking deletes members through the guarded lifecycle. Pages, the API and the
autoscaler call these same functions."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from portal.audit.service import record
from portal.auth.access import administered_tenant_ids
from portal.extensions import db
from portal.i18n import _
from portal.models import (
    BaremetalGroup,
    ScalingPolicy,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
    VmGroup,
    VmGroupMember,
    utcnow,
)
from portal.models.autoscaling import MEMBER_STATUSES
from portal.provisioning import jobs
from portal.scheduler.reservation import NodeSpec, reserve
from portal.vms import service as vms

MAX_SIZE = 100
# Room for "-100" after the name inside a VM name's 63 characters.
MAX_NAME_LENGTH = 58
# Members that sit on a server as members of the anti-affinity set.
PLACED_STATUSES = ("provisioning", "active", "migrating")

AfterChange = Callable[[list[VirtualMachine]], None]


class VmGroupError(ValueError):
    """A change to a VM group that cannot be made; the message says why."""


@dataclass
class VmGroupRequest:
    tenant: Tenant
    group: BaremetalGroup
    flavor: VirtualMachineSpecification
    name: str
    size: int
    anti_affinity: str = "soft"


def _get(model, object_id):
    return db.session.get(model, object_id) if isinstance(object_id, int) else None


def build_request(user: User, *, name: str, tenant_id: int | None, group_id: int | None,
                  spec_id: int | None, size: int | None,
                  anti_affinity: str | None = None) -> VmGroupRequest:
    """A request the user may make, or RequestInvalid naming every bad field (another
    tenant's id is reported like one that does not exist)."""
    errors: dict[str, str] = {}
    allowed = administered_tenant_ids(user)
    tenant = _get(Tenant, tenant_id)
    if tenant is None or (allowed is not None and tenant.id not in allowed):
        errors["tenant_id"] = _("Choose one of your tenants.")
        tenant = None
    group = _get(BaremetalGroup, group_id)
    if group is None:
        errors["group_id"] = _("Choose a group.")
    elif tenant is not None and not vms.has_quota(tenant.id, group.id):
        errors["group_id"] = _("Tenant %(tenant)s has no quota in this group: choose a group "
                               "where it has one.", tenant=tenant.name)
    flavor = _get(VirtualMachineSpecification, spec_id)
    if flavor is None:
        errors["spec_id"] = _("Choose a flavor.")
    elif not flavor.is_active:
        errors["spec_id"] = _("Flavor %(flavor)s is retired: choose an active flavor.",
                              flavor=flavor.name)
    from portal.text import clean

    name = clean(name)
    if problem := vms.validate_name(name, "VM group"):
        errors["name"] = problem
    elif len(name) > MAX_NAME_LENGTH:
        errors["name"] = _("A VM group name has at most %(max)s characters, so that its "
                           "members' names fit.", max=MAX_NAME_LENGTH)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE:
        errors["size"] = _("A VM group starts with 1 to %(max)s members.", max=MAX_SIZE)
    anti_affinity = anti_affinity or "soft"
    if problem := vms.anti_affinity_problem(anti_affinity):
        errors["anti_affinity"] = problem
    if not errors:
        if _live_group_named(tenant.id, name):
            errors["name"] = _("Tenant %(tenant)s already has a VM group named %(name)s.",
                               tenant=tenant.name, name=name)
        elif taken := vms.taken_names(tenant.id, member_names(name, range(1, size + 1))):
            errors["name"] = _("Tenant %(tenant)s already has VMs named %(names)s.",
                               tenant=tenant.name, names=", ".join(sorted(taken)))
    if errors:
        raise vms.RequestInvalid(errors)
    return VmGroupRequest(tenant, group, flavor, name, size, anti_affinity)


def member_names(name: str, ordinals) -> list[str]:
    return [f"{name}-{i}" for i in ordinals]


def _live_group_named(tenant_id: int, name: str) -> bool:
    return db.session.scalar(
        select(VmGroup.id).where(VmGroup.tenant_id == tenant_id, VmGroup.name == name,
                                 VmGroup.status != "deleted")
    ) is not None


def create_group(request: VmGroupRequest, user: User | None) -> VmGroup:
    """Place every member and create the group in one transaction, or nothing (raises
    PlacementRefused with the scheduler's explanation)."""
    vm_group = VmGroup(name=request.name, tenant_id=request.tenant.id,
                       group_id=request.group.id, spec_id=request.flavor.id,
                       anti_affinity=request.anti_affinity, status="active",
                       created_by=user.id if user is not None else None)
    nodes = [NodeSpec(n, "standalone", request.flavor)
             for n in member_names(request.name, range(1, request.size + 1))]

    def with_group(placed: list[VirtualMachine]) -> None:
        vm_group.id = None  # an earlier attempt's rolled-back INSERT must not lend its id
        db.session.add(vm_group)
        db.session.flush()
        db.session.add_all(VmGroupMember(vm_group_id=vm_group.id, vm_id=vm.id) for vm in placed)
        record("create", "vm_group", vm_group.id, vm_group.name,
               {"size": {"from": None, "to": len(placed)},
                "flavor": {"from": None, "to": request.flavor.name}}, user=user)

    reserve(request.tenant, request.group, nodes, user=user, before_commit=with_group,
            anti_affinity=request.anti_affinity)
    return vm_group


def live_members(vm_group: VmGroup) -> list[VirtualMachine]:
    """Members counted in the group's size (not deleting, not deleted), oldest first."""
    return [vm for vm in members(vm_group) if vm.status in MEMBER_STATUSES]


def members(vm_group: VmGroup, include_deleted: bool = False) -> list[VirtualMachine]:
    """The group's VMs with their servers and flavors (one query), oldest first."""
    stmt = (
        select(VirtualMachine)
        .join(VmGroupMember, VmGroupMember.vm_id == VirtualMachine.id)
        .options(joinedload(VirtualMachine.baremetal), joinedload(VirtualMachine.spec))
        .where(VmGroupMember.vm_group_id == vm_group.id)
        .order_by(VirtualMachine.id)
    )
    if not include_deleted:
        stmt = stmt.where(VirtualMachine.status != "deleted")
    return list(db.session.scalars(stmt))


def occupancy(vm_group_id: int) -> dict[int, int]:
    """Server id -> members there: the anti-affinity set a new member joins."""
    return dict(Counter(db.session.scalars(
        select(VirtualMachine.baremetal_id)
        .join(VmGroupMember, VmGroupMember.vm_id == VirtualMachine.id)
        .where(VmGroupMember.vm_group_id == vm_group_id,
               VirtualMachine.status.in_(PLACED_STATUSES),
               VirtualMachine.baremetal_id.is_not(None))
    )))


def group_of_vm(vm_id: int) -> VmGroup | None:
    """The live VM group a VM belongs to, if any."""
    return db.session.scalar(
        select(VmGroup).join(VmGroupMember, VmGroupMember.vm_group_id == VmGroup.id)
        .where(VmGroupMember.vm_id == vm_id, VmGroup.status != "deleted")
    )


def _require_active(vm_group: VmGroup) -> None:
    if vm_group.status != "active":
        raise VmGroupError(_("VM group %(name)s is %(status)s.", name=vm_group.name,
                             status=vm_group.status))


def _lock(vm_group: VmGroup) -> None:
    """Lock the group's row (PostgreSQL; SQLite writers are serialised) and check it is
    still active, so that two changes to one group are taken one after the other."""
    db.session.scalar(select(VmGroup.id).where(VmGroup.id == vm_group.id).with_for_update())
    db.session.refresh(vm_group)
    _require_active(vm_group)


def resize(vm_group: VmGroup, size: int, user: User | None,
           and_then: AfterChange | None = None) -> list[VirtualMachine]:
    """Grow or shrink to ``size`` members. Up: the new members (all or nothing, through the
    scheduler, away from the members' servers) — PlacementRefused when they do not fit.
    Down: failed members first, then the newest, deleted through the lifecycle. Returns the
    members added or going; ``and_then`` runs inside the same transaction."""
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise VmGroupError(_("A VM group has 0 to %(max)s members.", max=MAX_SIZE))
    _lock(vm_group)
    current = live_members(vm_group)
    if size == len(current):
        db.session.rollback()
        raise VmGroupError(_("VM group %(name)s already has %(size)s members.",
                             name=vm_group.name, size=size))
    if size < len(current):
        going = sorted(current, key=lambda vm: (vm.status != "error", -vm.id))[:len(current) - size]
        jobs.request_deletes(going, user)
        record("resize", "vm_group", vm_group.id, vm_group.name,
               {"size": {"from": len(current), "to": size}}, user=user)
        if and_then is not None:
            and_then(going)
        db.session.commit()
        return going
    flavor = vm_group.spec
    if not flavor.is_active:
        db.session.rollback()
        raise VmGroupError(_("Flavor %(flavor)s of VM group %(name)s is retired: no member "
                             "can be added.", flavor=flavor.name, name=vm_group.name))
    pattern = re.compile(rf"^{re.escape(vm_group.name)}-(\d+)$")
    used = {int(m.group(1)) for vm in members(vm_group) if (m := pattern.match(vm.name))}
    free = (i for i in range(1, MAX_SIZE * 10) if i not in used)
    nodes = [NodeSpec(name, "standalone", flavor)
             for name in member_names(vm_group.name, [next(free) for _ in
                                                      range(size - len(current))])]
    taken = vms.taken_names(vm_group.tenant_id, [n.name for n in nodes])
    if taken:
        db.session.rollback()
        raise VmGroupError(_("Tenant %(tenant)s already has VMs named %(names)s: rename them "
                             "before growing the group.", tenant=vm_group.tenant.name,
                             names=", ".join(sorted(taken))))
    occupied = occupancy(vm_group.id)
    tenant, group, group_id, before = vm_group.tenant, vm_group.group, vm_group.id, len(current)
    db.session.commit()

    def join(placed: list[VirtualMachine]) -> None:
        db.session.add_all(VmGroupMember(vm_group_id=group_id, vm_id=vm.id) for vm in placed)
        record("resize", "vm_group", group_id, vm_group.name,
               {"size": {"from": before, "to": size}}, user=user)
        if and_then is not None:
            and_then(placed)

    return reserve(tenant, group, nodes, user=user, before_commit=join,
                   anti_affinity=vm_group.anti_affinity, occupied=occupied)


def delete_group(vm_group: VmGroup, user: User | None) -> list[VirtualMachine]:
    """Delete every member through the lifecycle, and the group's scaling policy; the group
    is ``deleted`` once its last member is."""
    _lock(vm_group)
    going = [vm for vm in members(vm_group) if vm.status not in ("deleting", "deleted")]
    jobs.request_deletes(going, user)
    policy = db.session.scalar(select(ScalingPolicy).where(ScalingPolicy.vm_group_id
                                                           == vm_group.id))
    if policy is not None:
        record("delete", "scaling_policy", policy.id, vm_group.name, {}, user=user)
        db.session.delete(policy)
    db.session.execute(update(VmGroup).where(VmGroup.id == vm_group.id,
                                             VmGroup.status == "active")
                       .values(status="deleting", updated_at=utcnow()))
    record("delete", "vm_group", vm_group.id, vm_group.name,
           {"status": {"from": "active", "to": "deleting"}}, user=user)
    finish_deleting([vm_group.id])
    db.session.commit()
    db.session.refresh(vm_group)
    return going


def finish_deleting(group_ids: list[int] | None = None) -> int:
    """Groups being deleted whose members are all gone become ``deleted`` (caller's
    transaction); returns how many."""
    stmt = select(VmGroup.id).where(VmGroup.status == "deleting")
    if group_ids is not None:
        stmt = stmt.where(VmGroup.id.in_(group_ids))
    still = (select(VmGroupMember.id)
             .join(VirtualMachine, VirtualMachine.id == VmGroupMember.vm_id)
             .where(VmGroupMember.vm_group_id == VmGroup.id, VirtualMachine.status != "deleted")
             .exists())
    done = list(db.session.scalars(stmt.where(~still)))
    if done:
        db.session.execute(update(VmGroup).where(VmGroup.id.in_(done),
                                                 VmGroup.status == "deleting")
                           .values(status="deleted", updated_at=utcnow()))
    return len(done)
