"""The job queue to the Provision Agents, and what their answers do to VMs (SPEC 3).

Agents claim jobs with ``FOR UPDATE SKIP LOCKED`` and a lease, so any number of them can
run; a job whose lease expired without an answer is claimable again. A create that
succeeds makes the VM ``active``; one that fails makes it ``error`` and releases its
resources. A delete keeps the VM ``deleting`` (still holding resources) until an agent
confirms it, then ``deleted`` and released. A cluster follows its nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select

from portal.audit.service import record
from portal.extensions import begin_write, db
from portal.models import K8sCluster, ProvisionJob, User, VirtualMachine, utcnow
from portal.scheduler.reservation import release

DEFAULT_LEASE_SECONDS = 60


class JobError(ValueError):
    """An answer or request about a job that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class ClaimedJob:
    """What an agent needs to act on, detached from the database session."""

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


def enqueue(vm: VirtualMachine, action: str) -> ProvisionJob:
    job = ProvisionJob(vm_id=vm.id, action=action)
    db.session.add(job)
    return job


def claim(
    agent: str, limit: int = 1, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> list[ClaimedJob]:
    """Claim up to ``limit`` jobs for ``agent``: queued ones, and claimed ones whose lease
    has expired. Two agents never get the same job."""
    begin_write()  # SQLite has no SKIP LOCKED: claims are serialised instead
    now = utcnow()
    claimable = or_(
        ProvisionJob.status == "queued",
        and_(ProvisionJob.status == "claimed", ProvisionJob.lease_expires_at < now),
    )
    jobs = db.session.scalars(
        select(ProvisionJob)
        .where(claimable)
        .order_by(ProvisionJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for job in jobs:
        job.status = "claimed"
        job.claimed_by = agent
        job.attempts += 1
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        vm = job.vm
        claimed.append(
            ClaimedJob(
                job.id,
                job.action,
                vm.id,
                vm.name,
                vm.tenant_id,
                vm.baremetal_id,
                vm.cpu,
                vm.memory,
                vm.storage,
                job.attempts,
            )
        )
    db.session.commit()
    return claimed


def complete(job_id: int, agent: str, succeeded: bool, message: str = "") -> ProvisionJob:
    """Record an agent's answer and move the VM (and its cluster) accordingly."""
    begin_write()
    job = db.session.scalar(select(ProvisionJob).where(ProvisionJob.id == job_id).with_for_update())
    if job is None:
        raise JobError(f"No provisioning job {job_id}.")
    if job.status != "claimed":
        raise JobError(f"Job {job_id} is {job.status}, not claimed: nothing to complete.")
    if job.claimed_by != agent:
        raise JobError(
            f"Job {job_id} is claimed by {job.claimed_by}, not {agent} (its lease may have "
            "expired and another agent taken it)."
        )
    vm = db.session.scalar(
        select(VirtualMachine).where(VirtualMachine.id == job.vm_id).with_for_update()
    )
    job.status = "succeeded" if succeeded else "failed"
    job.result_message = message[:2000]
    job.lease_expires_at = None
    before = vm.status
    if job.action == "create":
        if succeeded:
            vm.status, vm.status_message = "active", message
        else:
            vm.status, vm.status_message = "error", message or "provisioning failed"
            release(vm)
    else:  # delete
        if succeeded:
            vm.status, vm.status_message = "deleted", message
            release(vm)
        else:
            vm.status_message = f"Delete failed: {message}" if message else "Delete failed"
    record(
        "provision",
        "virtual_machine",
        vm.id,
        vm.name,
        {"status": {"from": before, "to": vm.status}, "job": {"from": None, "to": job.action}},
    )
    if vm.k8s_cluster_id is not None:
        refresh_cluster_status(vm.k8s_cluster_id)
    db.session.commit()
    return job


def refresh_cluster_status(cluster_id: int) -> None:
    """A cluster follows its nodes: provisioning until every node is active, error when a
    node failed, deleted when every node is gone."""
    cluster = db.session.get(K8sCluster, cluster_id)
    statuses = set(
        db.session.scalars(
            select(VirtualMachine.status).where(VirtualMachine.k8s_cluster_id == cluster_id)
        )
    )
    live = statuses - {"deleted"}
    if cluster.status == "deleting":
        if not live:
            cluster.status = "deleted"
        return
    if "error" in live:
        cluster.status = "error"
    elif live and live <= {"active"} and cluster.status in ("provisioning", "error"):
        cluster.status = "active"
    elif "provisioning" in live and cluster.status == "error":
        cluster.status = "provisioning"


def request_delete(vm: VirtualMachine, user: User | None) -> ProvisionJob | None:
    """Start deleting a VM. It keeps its resources until an agent confirms. A VM in error
    holds nothing and has nothing to tear down on a server: it is deleted at once."""
    if vm.status in ("deleting", "deleted"):
        raise JobError(f"VM {vm.name} is already {vm.status}.")
    before = vm.status
    if vm.status == "error":
        vm.status = "deleted"
        job = None
    else:
        vm.status = "deleting"
        job = enqueue(vm, "delete")
    record(
        "delete",
        "virtual_machine",
        vm.id,
        vm.name,
        {"status": {"from": before, "to": vm.status}},
        user=user,
    )
    return job


def retry_delete(vm: VirtualMachine, user: User | None) -> ProvisionJob:
    if vm.status != "deleting":
        raise JobError(f"VM {vm.name} is {vm.status}: only a VM being deleted can retry it.")
    pending = db.session.scalar(
        select(ProvisionJob.id).where(
            ProvisionJob.vm_id == vm.id, ProvisionJob.status.in_(("queued", "claimed"))
        )
    )
    if pending is not None:
        raise JobError(f"VM {vm.name} already has a delete job in progress.")
    record(
        "retry",
        "virtual_machine",
        vm.id,
        vm.name,
        {"job": {"from": None, "to": "delete"}},
        user=user,
    )
    return enqueue(vm, "delete")
