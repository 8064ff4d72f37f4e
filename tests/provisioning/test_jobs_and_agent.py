"""The hand-off to Provision Agents: claiming, leases, answers, and what they do to VMs."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import Baremetal, ProvisionJob, VirtualMachine, utcnow
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import ProvisionFailed, SimulateDriver
from portal.scheduler.reservation import NodeSpec, reserve
from tests import factories as f


def place(count=1, cpu=4, prefix="vm"):
    grp = f.group()
    f.server(group=grp, cpu=64, memory=256, storage=2000)
    tenant, flavor = f.tenant(), f.flavor(cpu=cpu, memory=8, storage=50)
    f.quota(tenant, grp)
    db.session.commit()
    nodes = [NodeSpec(f"{prefix}-{i}", "standalone", flavor) for i in range(count)]
    return reserve(tenant, grp, nodes, user=None)


def free_cpu(vm_or_server_id):
    return db.session.scalar(select(Baremetal.available_cpu).where(Baremetal.id == vm_or_server_id))


def test_reservation_enqueues_one_create_job_per_vm(app):
    vms = place(3)
    created = db.session.scalars(select(ProvisionJob).order_by(ProvisionJob.id)).all()
    assert [(j.vm_id, j.action, j.status) for j in created] == [
        (vm.id, "create", "queued") for vm in vms
    ]
    assert {vm.status for vm in vms} == {"provisioning"}


def test_success_activates_and_failure_releases(app):
    ok, bad = place(2)
    server_id = ok.baremetal_id
    assert free_cpu(server_id) == 64 - 8
    claimed = jobs.claim("agent-a", limit=2)
    assert [c.vm_id for c in claimed] == [ok.id, bad.id]
    jobs.complete(claimed[0].id, "agent-a", True, "built")
    jobs.complete(claimed[1].id, "agent-a", False, "no IP address left in VLAN 210")
    db.session.expire_all()
    assert ok.status == "active"
    assert bad.status == "error" and bad.status_message == "no IP address left in VLAN 210"
    assert free_cpu(server_id) == 64 - 4  # the failed VM holds nothing any more
    assert counter_drift() == []


def test_delete_releases_only_after_confirmation(app):
    (vm,) = place(1)
    (job,) = jobs.claim("a")
    jobs.complete(job.id, "a", True)
    jobs.request_delete(db.session.get(VirtualMachine, vm.id), None)
    db.session.commit()
    assert vm.status == "deleting" and free_cpu(vm.baremetal_id) == 60  # still held
    (delete_job,) = jobs.claim("a")
    assert delete_job.action == "delete"
    jobs.complete(delete_job.id, "a", False, "hypervisor unreachable")
    db.session.expire_all()
    assert vm.status == "deleting" and "hypervisor unreachable" in vm.status_message
    assert free_cpu(vm.baremetal_id) == 60  # a failed delete keeps holding
    jobs.retry_delete(vm, None)
    db.session.commit()
    (again,) = jobs.claim("a")
    jobs.complete(again.id, "a", True)
    db.session.expire_all()
    assert vm.status == "deleted" and free_cpu(vm.baremetal_id) == 64
    assert counter_drift() == []


def test_two_agents_never_claim_the_same_job(any_app):
    place(30, cpu=2)
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def agent(name):
        with any_app.app_context():
            start.wait()
            while True:
                batch = jobs.claim(name, limit=2)
                if not batch:
                    break
                with lock:
                    claimed.extend(j.id for j in batch)
            db.session.remove()

    threads = [threading.Thread(target=agent, args=(f"agent-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 30


def test_an_expired_lease_is_claimed_again_and_the_late_answer_refused(app):
    place(1)
    (first,) = jobs.claim("slow-agent", lease_seconds=30)
    assert jobs.claim("other") == []  # leased: nobody else gets it
    job = db.session.get(ProvisionJob, first.id)
    job.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    (second,) = jobs.claim("other")
    assert second.id == first.id and second.attempts == 2
    with pytest.raises(jobs.JobError, match="claimed by other"):
        jobs.complete(first.id, "slow-agent", True)
    db.session.rollback()
    jobs.complete(second.id, "other", True)
    with pytest.raises(jobs.JobError, match="succeeded, not claimed"):
        jobs.complete(second.id, "other", True)


def test_agent_loop_with_simulate_driver(app):
    vms = place(4)
    driver = SimulateDriver(delay=0, failure_rate=0.5, seed=7)
    agent = Agent(DatabaseQueue(app), driver, name="test-agent")
    while agent.run_once():
        pass
    db.session.expire_all()
    statuses = [db.session.get(VirtualMachine, vm.id).status for vm in vms]
    assert set(statuses) == {"active", "error"}  # seed 7: some of each
    failed = [db.session.get(VirtualMachine, vm.id) for vm in vms]
    assert all("simulated failure" in v.status_message for v in failed if v.status == "error")
    assert counter_drift() == []


def test_simulate_driver_rejects_nonsense():
    with pytest.raises(ValueError):
        SimulateDriver(delay=-1)
    with pytest.raises(ValueError):
        SimulateDriver(failure_rate=1.5)
    with pytest.raises(ProvisionFailed):
        SimulateDriver(delay=0, failure_rate=1).run(
            jobs.ClaimedJob(1, "create", 1, "x", 1, 1, 1, 1, 1, 1))


def test_agent_cli_once(app):
    place(1)
    result = app.test_cli_runner().invoke(args=["agent", "run", "--once", "--delay", "0"])
    assert result.exit_code == 0 and "1 job(s) done" in result.output
    assert db.session.scalar(select(VirtualMachine.status)) == "active"
    result = app.test_cli_runner().invoke(args=["agent", "run", "--once", "--failure-rate", "2"])
    assert result.exit_code != 0 and "failure-rate" in result.output


def test_inline_agent_starts_with_the_first_request_and_provisions(tmp_path):
    """PORTAL_AGENT=inline, as `make run` sets it: the web process provisions by itself."""
    import time

    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'inline.sqlite3'}", PORTAL_AGENT="inline",
                   PORTAL_AGENT_DELAY=0)
    with app.app_context():
        assert "inline_agent" not in app.extensions  # not for CLI commands
        (vm,) = place(1)
        vm_id = vm.id
        db.session.remove()
    assert app.test_client().get("/healthz").status_code == 200
    agent = app.extensions["inline_agent"]
    try:
        with app.app_context():
            for _ in range(100):
                if db.session.get(VirtualMachine, vm_id).status == "active":
                    break
                db.session.remove()
                time.sleep(0.05)
            assert db.session.get(VirtualMachine, vm_id).status == "active"
            db.session.remove()
    finally:
        agent.stop()
