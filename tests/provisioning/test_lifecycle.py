"""The guarded lifecycle of SPEC 8.1, reproduced the way it broke (issue 10), on SQLite and
PostgreSQL: every transition is conditional, resources are released exactly once, a VM
has at most one live job, and a slow agent keeps its job by heartbeat."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from portal.baremetals.counters import counter_drift
from portal.clusters import service as clusters
from portal.extensions import db
from portal.models import K8sCluster, ProvisionJob, VirtualMachine, utcnow
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from portal.scheduler.reservation import NodeSpec, PlacementRefused, reserve
from portal.vms import service as vms
from tests import factories as f


def estate(cpu=64):
    grp = f.group()
    f.server(group=grp, cpu=cpu, memory=256, storage=2000)
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)
    user = f.user(operator=True)
    db.session.commit()
    return grp, tenant, flavor, user


def place(count=1):
    grp, tenant, flavor, user = estate()
    nodes = [NodeSpec(f"vm-{i}", "standalone", flavor) for i in range(count)]
    return reserve(tenant, grp, nodes, user=None), user


def vm_status(vm_id):
    db.session.expire_all()
    return db.session.get(VirtualMachine, vm_id).status


def job_rows(vm_id):
    return db.session.execute(
        select(ProvisionJob.action, ProvisionJob.status)
        .where(ProvisionJob.vm_id == vm_id)
        .order_by(ProvisionJob.id)
    ).all()


def test_delete_while_create_claimed_then_create_fails_releases_once(any_app):
    """Issue 10: claim create, delete, the create fails, the delete succeeds → released
    twice (12 cores used where VMs hold 16). Now: the failed create ends it, once."""
    (vm, other, third, fourth), user = place(4)
    (job, *_) = jobs.claim("agent-a")
    assert job.vm_id == vm.id
    vms.delete_vm(db.session.get(VirtualMachine, vm.id), user)
    assert vm_status(vm.id) == "deleting"
    assert job_rows(vm.id) == [("create", "claimed")]  # no second live job
    jobs.complete(job.id, "agent-a", False, "image missing")
    assert vm_status(vm.id) == "deleted"
    assert jobs.claim("agent-a", limit=10) and counter_drift() == []
    assert job_rows(vm.id) == [("create", "failed")]


def test_delete_while_create_claimed_then_create_succeeds_follows_with_the_delete(any_app):
    """Issue 10: the VM flipped deleting → active with the delete job still queued, a second
    delete made a second live job, capacity released twice."""
    (vm,), user = place(1)
    (job,) = jobs.claim("agent-a")
    vms.delete_vm(db.session.get(VirtualMachine, vm.id), user)
    with pytest.raises(jobs.JobError, match="already deleting"):
        vms.delete_vm(db.session.get(VirtualMachine, vm.id), user)
    db.session.rollback()
    jobs.complete(job.id, "agent-a", True, "built")
    assert vm_status(vm.id) == "deleting"  # never back to active
    assert job_rows(vm.id) == [("create", "succeeded"), ("delete", "queued")]
    (delete,) = jobs.claim("agent-b")
    jobs.complete(delete.id, "agent-b", True, "gone")
    assert vm_status(vm.id) == "deleted" and counter_drift() == []


def test_delete_while_create_queued_cancels_it(any_app):
    (vm,), user = place(1)
    vms.delete_vm(db.session.get(VirtualMachine, vm.id), user)
    assert vm_status(vm.id) == "deleted"
    assert job_rows(vm.id) == [("create", "cancelled")]
    assert jobs.claim("agent-a") == [] and counter_drift() == []


def test_the_database_refuses_a_second_live_job(any_app):
    (vm,), _ = place(1)
    db.session.add(ProvisionJob(vm_id=vm.id, action="delete"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_answers_to_a_cancelled_or_foreign_job_change_nothing(any_app):
    (vm,), user = place(1)
    job_id = db.session.scalar(select(ProvisionJob.id).where(ProvisionJob.vm_id == vm.id))
    vms.delete_vm(db.session.get(VirtualMachine, vm.id), user)
    with pytest.raises(jobs.JobError, match="cancelled, not claimed"):
        jobs.complete(job_id, "agent-a", True)
    with pytest.raises(jobs.JobError, match="cancelled"):
        jobs.heartbeat(job_id, "agent-a")
    assert vm_status(vm.id) == "deleted" and counter_drift() == []


def test_a_late_completion_after_reclaim_is_refused_and_the_heartbeat_too(any_app):
    (vm,), _ = place(1)
    (first,) = jobs.claim("slow", lease_seconds=30)
    job = db.session.get(ProvisionJob, first.id)
    job.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    (second,) = jobs.claim("fast")
    with pytest.raises(jobs.JobError, match="claimed by fast"):
        jobs.heartbeat(first.id, "slow")
    with pytest.raises(jobs.JobError, match="claimed by fast"):
        jobs.complete(first.id, "slow", False, "too late")
    jobs.complete(second.id, "fast", True)
    assert vm_status(vm.id) == "active" and counter_drift() == []


def test_retry_twice_places_once(any_app):
    (vm,), user = place(1)
    (job,) = jobs.claim("a")
    jobs.complete(job.id, "a", False, "boom")
    vms.retry_vm(db.session.get(VirtualMachine, vm.id), user)
    db.session.commit()
    stale = db.session.get(VirtualMachine, vm.id)
    set_committed_value(stale, "status", "error")  # a second tab still shows it failed
    with pytest.raises(PlacementRefused, match="no longer failed"):
        vms.retry_vm(stale, user)
    db.session.rollback()
    assert job_rows(vm.id) == [("create", "failed"), ("create", "queued")]
    assert counter_drift() == []


def test_slow_driver_keeps_its_job_by_heartbeat(any_app):
    """Issue 10: two agents, `--delay 8 --lease 3`: claimed 4 times in 22 s and never
    completed. Now the first agent renews its lease; the second never gets the job."""
    (vm,), _ = place(1)
    vm_id = vm.id
    db.session.remove()
    queue = DatabaseQueue(any_app)
    slow = Agent(queue, SimulateDriver(delay=2.5), name="slow", lease_seconds=1)
    other = Agent(queue, SimulateDriver(delay=0), name="other", lease_seconds=1)
    done = threading.Event()
    stolen = []

    def poach():
        while not done.is_set():
            stolen.extend(queue.claim("other", 1, 1))
            time.sleep(0.1)

    thief = threading.Thread(target=poach)
    started = threading.Thread(target=lambda: (slow.run_once(), done.set()))
    started.start()
    time.sleep(0.2)
    thief.start()
    started.join(timeout=30)
    done.set()
    thief.join(timeout=30)
    assert stolen == []
    assert other.run_once() == 0
    with any_app.app_context():
        job = db.session.scalar(select(ProvisionJob).where(ProvisionJob.vm_id == vm_id))
        assert (job.status, job.attempts, job.claimed_by) == ("succeeded", 1, "slow")
        assert vm_status(vm_id) == "active"


def make_cluster(workers=2):
    grp, tenant, flavor, user = estate(cpu=128)
    cluster = K8sCluster(name="k1", tenant_id=tenant.id, group_id=grp.id, version="1.31.2",
                         status="provisioning")
    nodes = [NodeSpec("k1-cp-1", "control-plane", flavor)] + [
        NodeSpec(f"k1-worker-{i}", "worker", flavor) for i in range(1, workers + 1)
    ]
    reserve(tenant, grp, nodes, user=None, cluster=cluster)
    return db.session.get(K8sCluster, cluster.id), user


def test_deleting_a_cluster_while_its_nodes_provision_releases_each_once(any_app):
    cluster, user = make_cluster(workers=2)
    claimed = jobs.claim("agent-a", limit=2)  # control plane and one worker are being built
    clusters.delete_cluster(cluster, user)
    db.session.expire_all()
    statuses = sorted(vm.status for vm in clusters.cluster_nodes(cluster))
    assert statuses == ["deleting", "deleting"]  # the third was cancelled: deleted
    jobs.complete(claimed[0].id, "agent-a", True, "built")  # its delete follows
    jobs.complete(claimed[1].id, "agent-a", False, "broke")  # nothing left to delete
    for job in jobs.claim("agent-b", limit=5):
        jobs.complete(job.id, "agent-b", True, "gone")
    db.session.expire_all()
    assert db.session.get(K8sCluster, cluster.id).status == "deleted"
    assert counter_drift() == []


def test_scale_up_into_a_deleting_cluster_is_refused(any_app):
    cluster, user = make_cluster(workers=1)
    for job in jobs.claim("a", limit=5):
        jobs.complete(job.id, "a", True)
    db.session.expire_all()
    stale = db.session.get(K8sCluster, cluster.id)
    db.session.expunge(stale)
    clusters.delete_cluster(db.session.get(K8sCluster, cluster.id), user)
    db.session.expire_all()
    with pytest.raises(clusters.ClusterError):
        clusters.scale_workers(db.session.get(K8sCluster, cluster.id), 3, user)
    db.session.rollback()
    assert counter_drift() == []
