"""The job queue to the Provision Agents, and the VM lifecycle it drives (SPEC 3, 8.1).

Every VM status change is one conditional UPDATE on the status it expects
(:func:`transition`), so a late, repeated or reordered event changes nothing; resources are
released only by the transition that ends holding, hence exactly once. A VM has at most one
live job (``queued`` or ``claimed``; a partial unique index enforces it):

- create succeeded: ``provisioning → active``; if a delete was asked meanwhile (the VM is
  ``deleting``), the delete job is queued now — the delete follows the create;
- create failed: ``provisioning → error`` (or ``deleting → deleted``), released;
- delete asked: ``active → deleting`` with a delete job; ``error → deleted`` (an error VM
  holds nothing); ``provisioning`` with its create still ``queued`` → the job is cancelled,
  ``deleted``, released; with its create ``claimed`` → ``deleting``, no job yet;
- delete succeeded: ``deleting → deleted``, released; failed: stays ``deleting`` (retry);
- migrate succeeded / failed: ``migrating → active``, the source / the target released.

Agents claim jobs with ``FOR UPDATE SKIP LOCKED`` and a lease that they renew while their
driver runs (:func:`heartbeat`); a job whose lease expired is claimable again, and the
first agent's late answer is refused. Lock order everywhere: cluster, VM, job, servers,
group — so that concurrent answers and requests never deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.service import record
from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import begin_write, db
from portal.i18n import _
from portal.metrics import presence
from portal.models import (
    LIVE_JOB_STATUSES,
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    ProvisionJob,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
    utcnow,
)
from portal.provisioning import messages as words
from portal.scheduler import Resources
from portal.scheduler.reservation import adjust_capacity
from portal.web.labels import action_label, status_label
from portal.webhooks import service as webhooks

DEFAULT_LEASE_SECONDS = 60
# A job's output is kept to this many characters: its start and its end, where a failing
# command says why (SPEC 8.8: "output kept in the job's record, truncated").
OUTPUT_LIMIT = 64 * 1024
OUTPUT_HEAD = 8 * 1024


class JobError(ValueError):
    """An answer or request about a job that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class ClusterNode:
    """A node of the job's cluster as it stood when the job was claimed, so that a driver
    can bootstrap control planes before workers (a worker learns where its control plane
    is, and whether it is active yet)."""

    vm_id: int
    name: str
    role: str
    status: str
    baremetal_name: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """What an agent needs to act on, detached from the database session: the action, the
    VM, its flavor, its server (and, for a migrate, the target server), its cluster."""

    id: int
    action: str
    vm_id: int
    vm_name: str
    tenant_id: int
    baremetal_id: int | None
    cpu: int
    memory: int
    storage: int
    attempts: int
    lease_expires_at: datetime | None = None
    target_baremetal_id: int | None = None
    role: str = "standalone"
    k8s_cluster_id: int | None = None
    tenant_name: str = ""
    spec_id: int | None = None
    spec_name: str = ""
    baremetal_name: str | None = None
    hypervisor_uri: str | None = None
    target_baremetal_name: str | None = None
    target_hypervisor_uri: str | None = None
    k8s_cluster_name: str | None = None
    k8s_version: str | None = None
    cluster_nodes: tuple[ClusterNode, ...] = field(default=())

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> ClaimedJob:
        """A job as the claim API answers it (unknown keys ignored, for older agents'
        sake the other way round)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in item.items() if k in names}
        values["cluster_nodes"] = tuple(
            ClusterNode(**{k: v for k, v in node.items()
                           if k in ClusterNode.__dataclass_fields__})
            for node in values.get("cluster_nodes") or ()
        )
        if isinstance(values.get("lease_expires_at"), str):
            values["lease_expires_at"] = datetime.fromisoformat(values["lease_expires_at"])
        return cls(**values)

    def document(self) -> dict[str, Any]:
        """The job as one JSON document, the way the exec driver hands it to a command."""

        def server(server_id, name, uri):
            if server_id is None:
                return None
            return {"id": server_id, "name": name, "hypervisor_uri": uri}

        cluster = None
        if self.k8s_cluster_id is not None:
            cluster = {
                "id": self.k8s_cluster_id, "name": self.k8s_cluster_name,
                "version": self.k8s_version,
                "nodes": [
                    {"vm_id": n.vm_id, "name": n.name, "role": n.role, "status": n.status,
                     "server": n.baremetal_name}
                    for n in self.cluster_nodes
                ],
            }
        return {
            "job": {"id": self.id, "action": self.action, "attempt": self.attempts},
            "action": self.action,
            "vm": {"id": self.vm_id, "name": self.vm_name, "role": self.role,
                   "tenant": {"id": self.tenant_id, "name": self.tenant_name}},
            "flavor": {"id": self.spec_id, "name": self.spec_name, "cpu": self.cpu,
                       "memory": self.memory, "storage": self.storage},
            "server": server(self.baremetal_id, self.baremetal_name, self.hypervisor_uri),
            "target_server": server(self.target_baremetal_id, self.target_baremetal_name,
                                    self.target_hypervisor_uri),
            "cluster": cluster,
            "role": self.role,
        }


@dataclass(frozen=True)
class ClaimScope:
    """Which jobs an agent takes: those whose VM sits on a server in one of these regions,
    dcs or groups (by name); empty means any. One agent per site or hypervisor pool."""

    regions: tuple[str, ...] = ()
    dcs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.regions or self.dcs or self.groups)

    def describe(self) -> str:
        """e.g. "region=tw-north dc=tpe1,tpe2" (as the agent presence table shows it)."""
        return " ".join(f"{name}={','.join(values)}" for name, values in (
            ("region", self.regions), ("dc", self.dcs), ("group", self.groups)) if values)


def clean_message(text: str | None) -> str:
    """A job's or VM's one-line message: no NUL, at most 2,000 characters."""
    return (text or "").replace("\x00", "\ufffd")[:2000]


def clean_output(text: str | None, limit: int = OUTPUT_LIMIT, head: int = OUTPUT_HEAD) -> str:
    """Output fit to keep: no NUL (PostgreSQL cannot store it), at most ``limit``
    characters — the first ``head`` and the last ones, with a line saying what was cut."""
    text = (text or "").replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text
    marker = f"\n[… {len(text) - limit:,} characters cut …]\n"
    return text[:head] + marker + text[len(text) - (limit - head - len(marker)):]


def transition(
    vm: VirtualMachine, expected: Iterable[str], to: str, message: str | None = None, **values
) -> bool:
    """Move ``vm`` to ``to`` if, in the database, it is still in one of ``expected``: one
    conditional UPDATE (with any other ``values``). False, and nothing changed, when another
    event got there first."""
    values.update(status=to, updated_at=utcnow())
    if message is not None:
        values["status_message"] = message[:2000]
    result = db.session.execute(
        update(VirtualMachine)
        .where(VirtualMachine.id == vm.id, VirtualMachine.status.in_(tuple(expected)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    expected = tuple(expected)
    previous = vm.status if vm.status in expected or len(expected) != 1 else expected[0]
    for name, value in values.items():  # mirror the row without writing it again
        set_committed_value(vm, name, value)
    webhooks.emit("vm.status_changed", "vm", vm.id, vm.tenant_id, previous,
                  {"name": vm.name, "status": to, "status_message": vm.status_message,
                   "baremetal_id": vm.baremetal_id, "k8s_cluster_id": vm.k8s_cluster_id})
    return True


def _release_from(server_id: int | None, vm: VirtualMachine) -> None:
    if server_id is not None:
        group_id = db.session.scalar(select(Baremetal.group_id).where(Baremetal.id == server_id))
        adjust_capacity(server_id, group_id, Resources(vm.cpu, vm.memory, vm.storage), sign=1)


def _job_transition(job_id: int, expected: str, to: str, **values) -> bool:
    guard = [ProvisionJob.id == job_id, ProvisionJob.status == expected]
    if "agent" in values:
        guard.append(ProvisionJob.claimed_by == values.pop("agent"))
    result = db.session.execute(
        update(ProvisionJob)
        .where(*guard)
        .values(status=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def enqueue(
    vm: VirtualMachine, action: str, target_baremetal_id: int | None = None
) -> ProvisionJob:
    """Queue a job for ``vm``. The partial unique index refuses a second live job."""
    job = ProvisionJob(vm_id=vm.id, action=action, target_baremetal_id=target_baremetal_id)
    db.session.add(job)
    db.session.flush()
    return job


def live_job(vm_id: int, lock: bool = False) -> ProvisionJob | None:
    stmt = select(ProvisionJob).where(
        ProvisionJob.vm_id == vm_id, ProvisionJob.status.in_(LIVE_JOB_STATUSES)
    )
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt.execution_options(populate_existing=True))


def lock_vm(vm_id: int) -> VirtualMachine | None:
    """The VM's row, fresh and locked until the transaction ends (PostgreSQL; SQLite
    writers are serialised by begin_write)."""
    return db.session.scalar(
        select(VirtualMachine)
        .where(VirtualMachine.id == vm_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_cluster(cluster_id: int) -> K8sCluster | None:
    return db.session.scalar(
        select(K8sCluster)
        .where(K8sCluster.id == cluster_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


# ---------------------------------------------------------------------------- agents


def _in_scope(scope: ClaimScope):
    """Jobs whose VM is on a server of the scope (a subquery: FOR UPDATE locks jobs only)."""
    servers = select(VirtualMachine.id).join(
        Baremetal, Baremetal.id == VirtualMachine.baremetal_id)
    if scope.regions:
        servers = servers.where(Baremetal.region.in_(scope.regions))
    if scope.dcs:
        servers = servers.where(Baremetal.dc.in_(scope.dcs))
    if scope.groups:
        servers = servers.join(BaremetalGroup, BaremetalGroup.id == Baremetal.group_id).where(
            BaremetalGroup.name.in_(scope.groups))
    return ProvisionJob.vm_id.in_(servers)


def claim(
    agent: str, limit: int = 1, lease_seconds: int = DEFAULT_LEASE_SECONDS,
    scope: ClaimScope | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` jobs for ``agent``: queued ones, and claimed ones whose lease
    has expired (within ``scope``, if given). Two agents never get the same job."""
    begin_write()  # SQLite has no SKIP LOCKED: claims are serialised instead
    now = utcnow()
    claimable = or_(
        ProvisionJob.status == "queued",
        and_(ProvisionJob.status == "claimed", ProvisionJob.lease_expires_at < now),
    )
    ids = db.session.scalars(
        select(ProvisionJob.id)
        .where(claimable, *((_in_scope(scope),) if scope else ()))
        .order_by(ProvisionJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    lease = now + timedelta(seconds=lease_seconds)
    if ids:
        db.session.execute(
            update(ProvisionJob)
            .where(ProvisionJob.id.in_(ids), claimable)
            .values(
                status="claimed",
                claimed_by=agent,
                attempts=ProvisionJob.attempts + 1,
                lease_expires_at=lease,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    claimed = _claimed_jobs(ids, agent, lease)
    presence.touch(agent, now, scope=scope.describe() if scope else None)
    db.session.commit()
    return claimed


def _claimed_jobs(ids: list[int], agent: str, lease: datetime) -> list[ClaimedJob]:
    """The claimed jobs with everything their driver needs, in two queries."""
    source, target = aliased(Baremetal), aliased(Baremetal)
    rows = db.session.execute(
        select(ProvisionJob, VirtualMachine, Tenant.name, VirtualMachineSpecification.name,
               source.name, source.hypervisor_uri, target.name, target.hypervisor_uri,
               K8sCluster.name, K8sCluster.version)
        .join(VirtualMachine, VirtualMachine.id == ProvisionJob.vm_id)
        .join(Tenant, Tenant.id == VirtualMachine.tenant_id)
        .join(VirtualMachineSpecification,
              VirtualMachineSpecification.id == VirtualMachine.spec_id)
        .outerjoin(source, source.id == VirtualMachine.baremetal_id)
        .outerjoin(target, target.id == ProvisionJob.target_baremetal_id)
        .outerjoin(K8sCluster, K8sCluster.id == VirtualMachine.k8s_cluster_id)
        .where(ProvisionJob.id.in_(ids), ProvisionJob.claimed_by == agent,
               ProvisionJob.status == "claimed")
        .order_by(ProvisionJob.id)
        .execution_options(populate_existing=True)
    ).all()
    nodes: dict[int, list[ClusterNode]] = {}
    cluster_ids = {row[1].k8s_cluster_id for row in rows} - {None}
    if cluster_ids:
        for cluster_id, *node in db.session.execute(
            select(VirtualMachine.k8s_cluster_id, VirtualMachine.id, VirtualMachine.name,
                   VirtualMachine.role, VirtualMachine.status, Baremetal.name)
            .outerjoin(Baremetal, Baremetal.id == VirtualMachine.baremetal_id)
            .where(VirtualMachine.k8s_cluster_id.in_(cluster_ids),
                   VirtualMachine.status != "deleted")
            .order_by(VirtualMachine.id)
        ):
            nodes.setdefault(cluster_id, []).append(ClusterNode(*node))
    return [
        ClaimedJob(
            job.id, job.action, vm.id, vm.name, vm.tenant_id, vm.baremetal_id,
            vm.cpu, vm.memory, vm.storage, job.attempts, lease,
            job.target_baremetal_id, vm.role, vm.k8s_cluster_id,
            tenant_name=tenant, spec_id=vm.spec_id, spec_name=spec, baremetal_name=server,
            hypervisor_uri=uri, target_baremetal_name=target_server,
            target_hypervisor_uri=target_uri, k8s_cluster_name=cluster, k8s_version=version,
            cluster_nodes=tuple(nodes.get(vm.k8s_cluster_id, ())),
        )
        for job, vm, tenant, spec, server, uri, target_server, target_uri, cluster, version
        in rows
    ]


def heartbeat(job_id: int, agent: str, lease_seconds: int = DEFAULT_LEASE_SECONDS,
              message: str | None = None) -> datetime:
    """Renew ``agent``'s lease on a job its driver is still working on (with ``message``:
    what it is doing now, shown with the job). Refused once the job is no longer this
    agent's (answered, cancelled, or re-claimed after expiry).

    A driver that cannot act yet (a worker whose control plane is not up) defers the job
    this way too: the lease set to when it may be tried again, after which any agent
    claims it anew (``attempts`` counts the tries)."""
    begin_write()
    lease = utcnow() + timedelta(seconds=lease_seconds)
    values: dict[str, Any] = {"lease_expires_at": lease}
    if message is not None:
        values["result_message"] = clean_message(message)
    result = db.session.execute(
        update(ProvisionJob)
        .where(ProvisionJob.id == job_id, ProvisionJob.status == "claimed",
               ProvisionJob.claimed_by == agent)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise JobError(_not_yours(job_id, agent))
    presence.touch(agent)
    db.session.commit()
    return lease


def _not_yours(job_id: int, agent: str) -> str:
    job = db.session.get(ProvisionJob, job_id, populate_existing=True)
    if job is None:
        return _("No provisioning job %(id)s.", id=job_id)
    if job.status != "claimed":
        return _("Job %(id)s is %(status)s, not claimed: nothing to do.", id=job_id,
                 status=status_label(job.status))
    return _("Job %(id)s is claimed by %(owner)s, not %(agent)s (its lease expired and "
             "another agent took it).", id=job_id, owner=job.claimed_by, agent=agent)


def complete(job_id: int, agent: str, succeeded: bool, message: str = "",
             kubeconfig: str | None = None, output: str = "") -> ProvisionJob:
    """Record an agent's answer and move the VM (and its cluster) accordingly. Refused
    unless the job is claimed by this agent right now. A successful create of a
    control-plane node may bring the cluster's ``kubeconfig``: kept encrypted (SPEC 8.6).
    The driver's ``output`` is kept with the job, truncated (:func:`clean_output`)."""
    message = clean_message(message)
    if kubeconfig is not None:
        try:
            kubeconfigs.check(kubeconfig)
        except kubeconfigs.KubeconfigError as error:
            raise JobError(str(error)) from None
    begin_write()
    row = db.session.execute(
        select(ProvisionJob.vm_id, VirtualMachine.k8s_cluster_id)
        .join(VirtualMachine, VirtualMachine.id == ProvisionJob.vm_id)
        .where(ProvisionJob.id == job_id)
    ).first()
    if row is None:
        db.session.rollback()
        raise JobError(_("No provisioning job %(id)s.", id=job_id))
    if row.k8s_cluster_id is not None:
        lock_cluster(row.k8s_cluster_id)
    vm = lock_vm(row.vm_id)
    outcome = "succeeded" if succeeded else "failed"
    if not _job_transition(job_id, "claimed", outcome, agent=agent,
                           result_message=message, output=clean_output(output),
                           lease_expires_at=None):
        error = _not_yours(job_id, agent)
        db.session.rollback()
        raise JobError(error)
    job = db.session.get(ProvisionJob, job_id, populate_existing=True)
    before = vm.status
    _apply(job, vm, succeeded, message)
    if (kubeconfig is not None and succeeded and job.action == "create"
            and vm.role == "control-plane" and vm.k8s_cluster_id is not None):
        kubeconfigs.store(vm.k8s_cluster_id, kubeconfig)
    record(
        "provision",
        "virtual_machine",
        vm.id,
        vm.name,
        {"status": {"from": before, "to": vm.status}, "job": {"from": None, "to": job.action},
         "outcome": {"from": None, "to": outcome}},
    )
    if vm.k8s_cluster_id is not None:
        refresh_cluster_status(vm.k8s_cluster_id, locked=True)
    webhooks.emit("job.finished", "job", job.id, vm.tenant_id, "claimed",
                  {"action": job.action, "status": outcome, "vm_id": vm.id,
                   "vm_status": vm.status, "message": job.result_message})
    db.session.commit()
    return job


def _apply(job: ProvisionJob, vm: VirtualMachine, succeeded: bool, message: str) -> None:
    """What an answer does to its VM; each branch one guarded transition."""
    if job.action == "create":
        if succeeded:
            if not transition(vm, ("provisioning", "pending"), "active", message) \
                    and vm.status == "deleting":
                enqueue(vm, "delete")  # the delete asked during the create follows it
        elif transition(vm, ("provisioning", "pending"), "error",
                        message or words.PROVISIONING_FAILED()):
            _release_from(vm.baremetal_id, vm)
        elif transition(vm, ("deleting",), "deleted",
                        words.CREATE_FAILED_BEFORE_DELETE(message=message)):
            _release_from(vm.baremetal_id, vm)
    elif job.action == "delete":
        if succeeded:
            if transition(vm, ("deleting",), "deleted", message):
                _release_from(vm.baremetal_id, vm)
        else:
            vm.status_message = (words.DELETE_FAILED_BECAUSE(message=message) if message
                                 else words.DELETE_FAILED())
    else:  # migrate: the VM held on both servers until now
        source, target = vm.baremetal_id, job.target_baremetal_id
        if succeeded:
            if transition(vm, ("migrating",), "active", message, baremetal_id=target):
                _release_from(source, vm)
        elif transition(vm, ("migrating",), "active",
                        words.MIGRATION_FAILED(message=message)):
            _release_from(target, vm)


# -------------------------------------------------------------------------- requests


def request_delete(vm: VirtualMachine, user: User | None) -> ProvisionJob | None:
    """Start deleting a VM (SPEC 8.1). Active: ``deleting`` until an agent confirms, still
    holding. Error: ``deleted`` at once (it holds nothing). Provisioning with the create
    still queued: the create is cancelled, ``deleted``, released. Provisioning with the
    create claimed by an agent: ``deleting``, and the delete is queued when the create
    answers. The caller commits."""
    fresh = lock_vm(vm.id)
    status = fresh.status
    if status in ("deleting", "deleted"):
        raise JobError(_("VM %(vm)s is already %(status)s.", vm=vm.name,
                           status=status_label(status)))
    if status == "migrating":
        raise JobError(_("VM %(vm)s is moving to another server: delete it once it has.",
                           vm=vm.name))
    job = None
    if status == "error":
        moved = transition(fresh, ("error",), "deleted")
    elif status == "active":
        moved = transition(fresh, ("active",), "deleting")
        job = enqueue(fresh, "delete") if moved else None
    else:  # provisioning (or the legacy pending)
        create = live_job(vm.id, lock=True)
        if create is None or _job_transition(create.id, "queued", "cancelled",
                                             result_message=words.CANCELLED_VM_DELETED()):
            moved = transition(fresh, (status,), "deleted", words.DELETED_BEFORE_BUILT())
            if moved:
                _release_from(fresh.baremetal_id, fresh)
        else:
            moved = transition(fresh, (status,), "deleting", words.DELETING_ONCE_BUILT())
    if not moved:  # pragma: no cover - the row lock makes this unreachable
        raise JobError(_("VM %(vm)s changed meanwhile; reload and try again.", vm=vm.name))
    record(
        "delete",
        "virtual_machine",
        vm.id,
        vm.name,
        {"status": {"from": status, "to": fresh.status}},
        user=user,
    )
    return job


def request_migrate(
    vm: VirtualMachine, target_baremetal_id: int, user: User | None
) -> ProvisionJob:
    """Start moving an active VM to another server (an evacuation, SPEC 8.2): ``migrating``
    with a ``migrate`` job, holding on both servers until the agent answers. The caller has
    already reserved the target's room (under the target server's row lock) and commits."""
    fresh = lock_vm(vm.id)
    if fresh.status != "active":
        raise JobError(_("VM %(vm)s is %(status)s: only an active VM can move.", vm=vm.name,
                           status=status_label(fresh.status)))
    if fresh.baremetal_id == target_baremetal_id:
        raise JobError(_("VM %(vm)s is already on that server.", vm=vm.name))
    source = fresh.baremetal_id
    names = dict(db.session.execute(
        select(Baremetal.id, Baremetal.name)
        .where(Baremetal.id.in_((source, target_baremetal_id)))
    ).all())
    if target_baremetal_id not in names:
        raise JobError(_("No server %(server)s to move VM %(vm)s to.",
                           server=target_baremetal_id, vm=vm.name))
    if not transition(fresh, ("active",), "migrating",
                      words.MIGRATING_TO(server=names[target_baremetal_id])):  # pragma: no cover
        raise JobError(_("VM %(vm)s changed meanwhile; reload and try again.", vm=vm.name))
    job = enqueue(fresh, "migrate", target_baremetal_id)
    record(
        "migrate",
        "virtual_machine",
        vm.id,
        vm.name,
        {"status": {"from": "active", "to": "migrating"},
         "baremetal": {"from": names.get(source), "to": names[target_baremetal_id]}},
        user=user,
    )
    return job


def request_deletes(vms: list[VirtualMachine], user: User | None) -> None:
    """Delete several VMs in one transaction (a cluster, a scale-down). Their servers are
    locked first, in id order, as a reservation locks them: releasing node by node would
    otherwise take server and group locks in an order that deadlocks with reservations."""
    server_ids = sorted({vm.baremetal_id for vm in vms if vm.baremetal_id is not None})
    if server_ids:
        db.session.execute(
            select(Baremetal.id).where(Baremetal.id.in_(server_ids)).order_by(Baremetal.id)
            .with_for_update(key_share=True)
        ).all()
    for vm in sorted(vms, key=lambda vm: vm.id):
        request_delete(vm, user)


def retry_delete(vm: VirtualMachine, user: User | None) -> ProvisionJob:
    """Queue the delete again after an agent failed it."""
    fresh = lock_vm(vm.id)
    if fresh.status != "deleting":
        raise JobError(_("VM %(vm)s is %(status)s: only a VM being deleted can retry it.",
                           vm=vm.name, status=status_label(fresh.status)))
    pending = live_job(vm.id, lock=True)
    if pending is not None:
        raise JobError(_("VM %(vm)s already has a job in progress (%(action)s).", vm=vm.name,
                           action=action_label(pending.action)))
    record(
        "retry",
        "virtual_machine",
        vm.id,
        vm.name,
        {"job": {"from": None, "to": "delete"}},
        user=user,
    )
    return enqueue(fresh, "delete")


def refresh_cluster_status(cluster_id: int, locked: bool = False) -> None:
    """A cluster follows its nodes: provisioning until every node is active, error when a
    node failed, deleted when every node is gone. Computed under the cluster's row lock, so
    two nodes answering at once never leave it behind."""
    cluster = db.session.get(K8sCluster, cluster_id) if locked else lock_cluster(cluster_id)
    statuses = set(
        db.session.scalars(
            select(VirtualMachine.status).where(VirtualMachine.k8s_cluster_id == cluster_id)
        )
    )
    live = statuses - {"deleted"}
    status = cluster.status
    if status == "deleted":
        return
    if status == "deleting":
        new = "deleted" if not live else status
    elif "error" in live:
        new = "error"
    elif live and live <= {"active"} and status in ("provisioning", "error"):
        new = "active"
    elif "provisioning" in live and status == "error":
        new = "provisioning"
    else:
        new = status
    if new != status:
        db.session.execute(
            update(K8sCluster)
            .where(K8sCluster.id == cluster_id, K8sCluster.status == status)
            .values(status=new, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        set_committed_value(cluster, "status", new)
        emit_cluster_status(cluster, status)


def emit_cluster_status(cluster: K8sCluster, previous: str | None) -> None:
    """cluster.status_changed for the webhooks (SPEC 8.6), in the change's transaction."""
    webhooks.emit("cluster.status_changed", "cluster", cluster.id, cluster.tenant_id,
                  previous, {"name": cluster.name, "status": cluster.status})
