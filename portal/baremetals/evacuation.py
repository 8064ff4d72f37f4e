"""Draining a server or a whole rack before maintenance (SPEC 8.2), and returning it to
service.

A drain plans, for every VM holding resources on the servers, a destination among the
same group's active servers (quotas are unchanged: same group), with the pure core, one VM
at a time over a working copy of free capacity. A cluster's nodes stay spread: a control
plane never joins a server holding another control plane of its cluster, and other nodes
prefer the servers holding the fewest members of their cluster (soft anti-affinity).
VMs that are not ``active``, and VMs with nowhere to go, are *stuck*, with the reason.

Executing is one transaction, all or nothing: the clusters of the moving VMs and then
the VMs are locked (lock order cluster → VM → servers → group, as agents' answers take
them), the plan is made again with fresh numbers, the evacuated and destination servers
are locked in id order and re-validated, the evacuated servers go to ``maintenance`` (no
new placements), destinations are reserved and every VM gets a ``migrate`` job
(``jobs.request_migrate``). If anything changed between the plan and the locks (a
destination lost its room, a VM arrived or changed), the attempt is rolled back and
planned again; after a few attempts the drain is refused as busy.

Progress is read from the audit trail: each executed drain records its migrate job ids
on the server (or rack), and the page shows those jobs' state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select, update

from portal.audit.service import record
from portal.extensions import begin_write, db
from portal.i18n import _, _l, _n
from portal.models import (
    HOLDING_STATUSES,
    LIVE_JOB_STATUSES,
    AuditEvent,
    Baremetal,
    K8sCluster,
    ProvisionJob,
    Rack,
    User,
    VirtualMachine,
)
from portal.provisioning import jobs
from portal.scheduler import (
    DEFAULT_STRATEGY,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Resources,
    plan,
)
from portal.scheduler.reservation import _hosts, adjust_capacity, retried_transaction

MAX_ATTEMPTS = 5
DRAINABLE = ("active", "maintenance")
CONTROL_PLANE = "control-plane"

WAIT_REASONS = {
    "provisioning": _l("is provisioning: drain again once it is active"),
    "pending": _l("is provisioning: drain again once it is active"),
    "deleting": _l("is being deleted: it leaves the server once the agent confirms"),
}


class EvacuationRefused(Exception):
    """The drain or return to service cannot be done; the message says why."""


@dataclass(frozen=True)
class Move:
    vm_id: int
    vm_name: str
    from_baremetal_id: int
    from_name: str
    to_baremetal_id: int
    to_name: str


@dataclass(frozen=True)
class Stuck:
    vm_id: int
    vm_name: str
    reason: str


@dataclass
class Evacuation:
    """What a drain does (dry run) or did (executed)."""

    servers: list[Baremetal]
    moves: list[Move] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "moves": [{"vm_id": m.vm_id, "from_baremetal_id": m.from_baremetal_id,
                       "to_baremetal_id": m.to_baremetal_id} for m in self.moves],
            "stuck": [{"vm_id": s.vm_id, "reason": s.reason} for s in self.stuck],
        }


def servers_of_rack(rack: Rack) -> list[Baremetal]:
    return list(db.session.scalars(
        select(Baremetal).where(Baremetal.rack_id == rack.id).order_by(Baremetal.id)
    ))


# ----------------------------------------------------------------------------- planning


def _holding(server_ids: Sequence[int], lock: bool = False) -> list[VirtualMachine]:
    stmt = (
        select(VirtualMachine)
        .where(VirtualMachine.baremetal_id.in_(server_ids),
               VirtualMachine.status.in_(HOLDING_STATUSES))
        .order_by(VirtualMachine.id)
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update()
    return list(db.session.scalars(stmt))


def _arriving(server_ids: Sequence[int]) -> list[tuple[VirtualMachine, int]]:
    """VMs migrating INTO these servers (their live migrate job targets one of them)."""
    return list(db.session.execute(
        select(VirtualMachine, ProvisionJob.target_baremetal_id)
        .join(ProvisionJob, ProvisionJob.vm_id == VirtualMachine.id)
        .where(ProvisionJob.action == "migrate", ProvisionJob.status.in_(LIVE_JOB_STATUSES),
               ProvisionJob.target_baremetal_id.in_(server_ids),
               VirtualMachine.status == "migrating")
        .order_by(VirtualMachine.id)
    ).all())


def _targets(vm_ids: Sequence[int]) -> dict[int, int]:
    """VM id → target server of its live migrate job."""
    if not vm_ids:
        return {}
    return dict(db.session.execute(
        select(ProvisionJob.vm_id, ProvisionJob.target_baremetal_id)
        .where(ProvisionJob.vm_id.in_(vm_ids), ProvisionJob.action == "migrate",
               ProvisionJob.status.in_(LIVE_JOB_STATUSES))
    ).all())


def _members(cluster_ids: set[int], exclude: set[int]) -> dict[int, list[tuple[str, int]]]:
    """Per cluster: (role, server id) of every live node that is not moving now, counting
    a migrating node on both of its servers."""
    found: dict[int, list[tuple[str, int]]] = {c: [] for c in cluster_ids}
    if not cluster_ids:
        return found
    rows = db.session.execute(
        select(VirtualMachine.id, VirtualMachine.k8s_cluster_id, VirtualMachine.role,
               VirtualMachine.baremetal_id, VirtualMachine.status)
        .where(VirtualMachine.k8s_cluster_id.in_(cluster_ids),
               VirtualMachine.status.in_(HOLDING_STATUSES))
    ).all()
    targets = _targets([r.id for r in rows if r.status == "migrating"])
    for vm_id, cluster_id, role, server_id, _status in rows:
        if vm_id in exclude:
            continue
        found[cluster_id].append((role, server_id))
        if vm_id in targets:
            found[cluster_id].append((role, targets[vm_id]))
    return found


class _Planner:
    """Destinations for VMs one at a time, over a working copy of the groups' free
    capacity (earlier moves of the same drain count)."""

    def __init__(self, evacuated: set[int], moving: set[int], clusters: set[int]) -> None:
        self.evacuated = evacuated
        self.hosts: dict[int, list[Host]] = {}
        self.free: dict[int, Resources] = {}
        self.names: dict[int, str] = {}
        self.members = _members(clusters, moving)

    def _group_hosts(self, group_id: int) -> list[Host]:
        if group_id not in self.hosts:
            hosts = [h for h in _hosts(group_id) if h.id not in self.evacuated]
            self.hosts[group_id] = hosts
            for h in hosts:
                self.free[h.id] = h.free
                self.names[h.id] = h.name
        return [replace(h, free=self.free[h.id]) for h in self.hosts[group_id]]

    def place(self, vm: VirtualMachine, group_id: int | None) -> int | str:
        """The destination's id, or why there is none."""
        if group_id is None:
            return _("its server is in no group, so there is no server to move it to")
        hosts = self._group_hosts(group_id)
        if not hosts:
            return _("no other active server in its group")
        demand = NodeDemand(vm.role, Resources(vm.cpu, vm.memory, vm.storage))
        members = Counter()
        cp_servers: set[int] = set()
        if vm.k8s_cluster_id is not None:
            for role, server_id in self.members[vm.k8s_cluster_id]:
                members[server_id] += 1
                if role == CONTROL_PLANE:
                    cp_servers.add(server_id)
        if vm.role == CONTROL_PLANE:
            allowed = [h for h in hosts if h.id not in cp_servers]
            if not allowed:
                return _("every other server of its group holds a control plane of its "
                         "cluster; control planes stay on distinct servers")
            tiers = [allowed]
        else:  # soft anti-affinity: the fewest members of its cluster first
            by_count: dict[int, list[Host]] = {}
            for h in hosts:
                by_count.setdefault(members[h.id], []).append(h)
            tiers = [by_count[c] for c in sorted(by_count)]
        request = PlacementRequest(nodes=(demand,), strategy=DEFAULT_STRATEGY)
        result = None
        for tier in tiers:
            result = plan(request, tier)
            if isinstance(result, Plan):
                break
        if not isinstance(result, Plan):
            if len(tiers) > 1:  # explain against the whole group, not the last tier
                result = plan(request, [h for tier in tiers for h in tier])
            if not isinstance(result, Plan):
                return _("nowhere to go: %(reason)s", reason=result.message)
        target = result.assignments[0]
        self.free[target] = self.free[target] - demand.resources
        if vm.k8s_cluster_id is not None:
            self.members[vm.k8s_cluster_id].append((vm.role, target))
        return target


def _plan(servers: Sequence[Baremetal], lock: bool = False) -> Evacuation:
    ids = [s.id for s in servers]
    by_id = {s.id: s for s in servers}
    shown = Evacuation(list(servers))
    vms = _holding(ids, lock=lock)
    active = [vm for vm in vms if vm.status == "active"]
    targets = _targets([vm.id for vm in vms if vm.status == "migrating"])
    names = dict(db.session.execute(select(Baremetal.id, Baremetal.name)
                                    .where(Baremetal.id.in_(set(targets.values())))).all())
    for vm in vms:
        if vm.status == "migrating":
            target = targets.get(vm.id)
            shown.stuck.append(Stuck(vm.id, vm.name, _("is already migrating to %(server)s",
                                                        server=names.get(target, target))))
        elif vm.status != "active":
            shown.stuck.append(Stuck(vm.id, vm.name,
                                     str(WAIT_REASONS.get(vm.status, vm.status))))
    for vm, target in _arriving(ids):
        shown.stuck.append(Stuck(vm.id, vm.name, _(
            "is migrating here, to %(server)s: drain again once it has arrived",
            server=by_id[target].name)))
    planner = _Planner(set(ids), {vm.id for vm in active},
                       {vm.k8s_cluster_id for vm in active if vm.k8s_cluster_id is not None})
    # Control planes first (the hardest to place), then the largest VMs.
    order = sorted(active, key=lambda v: (v.role != CONTROL_PLANE, -v.cpu, -v.memory, v.id))
    for vm in order:
        source = by_id[vm.baremetal_id]
        where = planner.place(vm, source.group_id)
        if isinstance(where, str):
            shown.stuck.append(Stuck(vm.id, vm.name, where))
        else:
            shown.moves.append(Move(vm.id, vm.name, source.id, source.name, where,
                                    planner.names[where]))
    shown.moves.sort(key=lambda m: m.vm_id)
    shown.stuck.sort(key=lambda s: s.vm_id)
    return shown


def preview(servers: Sequence[Baremetal]) -> Evacuation:
    """The dry run: what a drain would do now. Changes nothing."""
    return _plan(servers)


# ---------------------------------------------------------------------------- executing


def evacuate(servers: Sequence[Baremetal], user: User | None, *, label: tuple[str, int, str]
             ) -> Evacuation:
    """Drain ``servers`` (one server, or a rack's): all or nothing, committed. ``label`` is
    the (object_type, id, name) the audit event and the progress panel hang on."""
    if db.session.new or db.session.dirty or db.session.deleted:
        raise RuntimeError("evacuate() owns the transaction: commit or roll back first")
    ids = [s.id for s in servers]
    return retried_transaction(
        lambda: _evacuate_once(ids, user, label),
        EvacuationRefused,
        lambda: EvacuationRefused(_("The group is too busy right now: other requests kept "
                                    "taking the chosen servers. Try again in a moment.")),
        attempts=MAX_ATTEMPTS,
    )


def _lock_servers(ids: set[int]) -> dict[int, Baremetal]:
    return {s.id: s for s in db.session.scalars(
        select(Baremetal).where(Baremetal.id.in_(ids)).order_by(Baremetal.id)
        .with_for_update(key_share=True).execution_options(populate_existing=True)
    )}


def _evacuate_once(ids: list[int], user: User | None, label: tuple[str, int, str]
                   ) -> Evacuation | None:
    servers = list(db.session.scalars(
        select(Baremetal).where(Baremetal.id.in_(ids)).order_by(Baremetal.id)
        .execution_options(populate_existing=True)))
    drained = [s for s in servers if s.status in DRAINABLE]
    if not drained:
        states = ", ".join(sorted({s.status for s in servers})) or _("gone")
        raise EvacuationRefused(_("Nothing to drain: the servers are %(states)s (only active "
                                  "servers and servers in maintenance are drained).",
                                  states=states))
    # Lock order cluster → VM → servers → group, as agents' answers and cluster deletes
    # take them (a cluster delete locks its servers before its nodes: the cluster's lock
    # first keeps the two from deadlocking).
    cluster_ids = db.session.scalars(
        select(VirtualMachine.k8s_cluster_id).distinct()
        .where(VirtualMachine.baremetal_id.in_([s.id for s in drained]),
               VirtualMachine.status.in_(HOLDING_STATUSES),
               VirtualMachine.k8s_cluster_id.is_not(None))
    ).all()
    if cluster_ids:
        db.session.execute(select(K8sCluster.id).where(K8sCluster.id.in_(cluster_ids))
                           .order_by(K8sCluster.id).with_for_update()).all()
    shown = _plan(drained, lock=True)  # locks the VMs
    moving = {m.vm_id for m in shown.moves}
    holding_before = {vm.id for vm in _holding([s.id for s in drained])}
    locked = _lock_servers({s.id for s in drained} | {m.to_baremetal_id for m in shown.moves})
    # A VM placed on a drained server before we locked it must be planned too.
    if {vm.id for vm in _holding([s.id for s in drained])} != holding_before:
        return None
    vms = {vm.id: vm for vm in _holding([s.id for s in drained]) if vm.id in moving}
    demand: dict[int, Resources] = {}
    for m in shown.moves:
        vm = vms[m.vm_id]
        demand[m.to_baremetal_id] = (demand.get(m.to_baremetal_id, Resources.zero())
                                     + Resources(vm.cpu, vm.memory, vm.storage))
    for target, amount in demand.items():
        server = locked[target]
        free = Resources(server.available_cpu, server.available_memory,
                         server.available_storage)
        if server.status != "active" or not amount.fits_in(free):
            return None  # it lost its room meanwhile: plan again with fresh numbers
    for server in drained:
        if server.status != "maintenance":
            db.session.execute(update(Baremetal).where(Baremetal.id == server.id)
                               .values(status="maintenance"))
            record("status", "baremetal", server.id, server.name,
                   {"status": {"from": server.status, "to": "maintenance"}}, user=user)
    by_group: dict[int, Resources] = {}
    for target, amount in sorted(demand.items()):
        adjust_capacity(target, None, amount, sign=-1)
        group_id = locked[target].group_id
        by_group[group_id] = by_group.get(group_id, Resources.zero()) + amount
    for group_id, amount in sorted(by_group.items()):
        adjust_capacity(None, group_id, amount, sign=-1)
    for m in shown.moves:
        shown.job_ids.append(jobs.request_migrate(vms[m.vm_id], m.to_baremetal_id, user).id)
    object_type, object_id, name = label
    record("evacuate", object_type, object_id, name,
           {"migrations": {"from": None, "to": len(shown.moves)},
            "stuck": {"from": None, "to": len(shown.stuck)},
            "jobs": {"from": None, "to": shown.job_ids}}, user=user)
    for server in drained:
        db.session.refresh(server)
    shown.servers = drained
    return shown


def return_to_service(servers: Sequence[Baremetal], user: User | None) -> list[Baremetal]:
    """Servers in maintenance back to ``active``, committed. Refused while VMs are still
    migrating off them: the drain is not over until the agent has answered for each."""
    begin_write()
    ids = [s.id for s in servers]
    locked = _lock_servers(set(ids))
    waiting = [s for s in locked.values() if s.status == "maintenance"]
    if not waiting:
        db.session.rollback()
        raise EvacuationRefused(_("Nothing to return to service: no server here is in "
                                  "maintenance."))
    leaving = db.session.execute(
        select(Baremetal.name, VirtualMachine.name)
        .join(VirtualMachine, VirtualMachine.baremetal_id == Baremetal.id)
        .where(Baremetal.id.in_([s.id for s in waiting]), VirtualMachine.status == "migrating")
        .order_by(Baremetal.name, VirtualMachine.name)
    ).all()
    if leaving:
        db.session.rollback()
        names = ", ".join(_("%(vm)s (on %(server)s)", vm=vm, server=server)
                          for server, vm in leaving[:5])
        if len(leaving) > 5:
            names = _("%(names)s and %(num)s more", names=names, num=len(leaving) - 5)
        raise EvacuationRefused(_n(
            "%(num)s VM is still migrating off: %(vms)s. Return the server to service once "
            "the agent has moved it (or failed to).",
            "%(num)s VMs are still migrating off: %(vms)s. Return the server to service once "
            "the agent has moved them (or failed to).", len(leaving), vms=names))
    for server in waiting:
        db.session.execute(update(Baremetal).where(Baremetal.id == server.id)
                           .values(status="active"))
        record("return_to_service", "baremetal", server.id, server.name,
               {"status": {"from": "maintenance", "to": "active"}}, user=user)
    db.session.commit()
    for server in waiting:
        db.session.refresh(server)
    return waiting


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Migration:
    job_id: int
    vm_id: int
    vm_name: str
    target_name: str
    state: str  # migrating | done | failed | cancelled
    message: str


def progress(object_type: str, object_id: int) -> list[Migration]:
    """The migrations of the latest executed drain of this server or rack, with their
    state now."""
    event = db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id,
               AuditEvent.action == "evacuate")
        .order_by(AuditEvent.id.desc()).limit(1)
    )
    job_ids = ((event.changes or {}).get("jobs") or {}).get("to") or [] if event else []
    if not job_ids:
        return []
    rows = db.session.execute(
        select(ProvisionJob, VirtualMachine.name, Baremetal.name)
        .join(VirtualMachine, VirtualMachine.id == ProvisionJob.vm_id)
        .outerjoin(Baremetal, Baremetal.id == ProvisionJob.target_baremetal_id)
        .where(ProvisionJob.id.in_(job_ids))
        .order_by(ProvisionJob.id)
    ).all()
    states = {"queued": "migrating", "claimed": "migrating", "succeeded": "done"}
    return [Migration(job.id, job.vm_id, vm_name, target or "—",
                      states.get(job.status, job.status), job.result_message or "")
            for job, vm_name, target in rows]
