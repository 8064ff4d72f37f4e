"""Draining a server or a rack: plan, execute through the agent, return to service — with
SPEC 8.1's invariant checked after every step, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.baremetals import evacuation
from portal.extensions import db
from portal.models import AuditEvent, Baremetal, ProvisionJob, VirtualMachine
from portal.provisioning import jobs
from portal.provisioning.drivers import SimulateDriver
from portal.vms import service as vms
from tests import factories as f
from tests.provisioning.invariants import lifecycle_violations


def ok():
    db.session.rollback()
    db.session.expire_all()
    assert lifecycle_violations() == []


def snapshot():
    db.session.expire_all()
    servers = db.session.execute(
        select(Baremetal.id, Baremetal.status, Baremetal.available_cpu)).all()
    vm_rows = db.session.execute(
        select(VirtualMachine.id, VirtualMachine.status, VirtualMachine.baremetal_id)).all()
    job_count = db.session.scalar(select(func.count(ProvisionJob.id)))
    return sorted(servers), sorted(vm_rows), job_count


@pytest.fixture
def estate(any_app):
    rack_a, rack_b = f.rack(), f.rack()
    group = f.group()
    a1 = f.server(rack=rack_a, group=group, cpu=16, memory=64, storage=400)
    a2 = f.server(rack=rack_a, group=group, cpu=16, memory=64, storage=400, rack_unit=3)
    b1 = f.server(rack=rack_b, group=group, cpu=16, memory=64, storage=400)
    b2 = f.server(rack=rack_b, group=group, cpu=16, memory=64, storage=400, rack_unit=3)
    tenant = f.tenant()
    f.quota(tenant, group, cpu_limit=200)
    flavor = f.flavor(cpu=4, memory=8, storage=40)
    user = f.user(operator=True)
    db.session.commit()
    return {"a1": a1, "a2": a2, "b1": b1, "b2": b2, "rack_a": rack_a, "rack_b": rack_b,
            "group": group, "tenant": tenant, "flavor": flavor, "user": user}


def answer_all(succeeded=True, message=None):
    claimed = jobs.claim("agent-1", 50)
    driver = SimulateDriver(delay=0)
    for job in claimed:
        text = message or driver.run(job)
        jobs.complete(job.id, "agent-1", succeeded, text)
    return claimed


def test_drain_a_server_end_to_end_through_the_agent(estate):
    e = estate
    one = f.vm(e["tenant"], e["a1"], e["flavor"])
    two = f.vm(e["tenant"], e["a1"], e["flavor"])
    db.session.commit()
    ok()
    before = snapshot()
    dry = evacuation.preview([e["a1"]])
    assert snapshot() == before  # the dry run changes nothing
    assert {m.vm_id for m in dry.moves} == {one.id, two.id}
    assert all(m.to_baremetal_id != e["a1"].id for m in dry.moves)
    assert dry.stuck == []

    done = evacuation.evacuate([e["a1"]], e["user"], label=("baremetal", e["a1"].id, "a1"))
    ok()
    assert done.as_dict() == dry.as_dict()
    assert db.session.get(Baremetal, e["a1"].id).status == "maintenance"
    moving = {vm.id: vm for vm in db.session.scalars(select(VirtualMachine))}
    assert {vm.status for vm in moving.values()} == {"migrating"}
    assert [m.state for m in evacuation.progress("baremetal", e["a1"].id)] == ["migrating"] * 2

    claimed = answer_all()
    assert {c.action for c in claimed} == {"migrate"}
    assert all(c.target_baremetal_id for c in claimed)
    ok()
    for move in done.moves:
        vm = db.session.get(VirtualMachine, move.vm_id)
        assert (vm.status, vm.baremetal_id) == ("active", move.to_baremetal_id)
        assert "migrated to" in vm.status_message
    server = db.session.get(Baremetal, e["a1"].id)
    assert server.available_cpu == server.total_cpu
    assert [m.state for m in evacuation.progress("baremetal", e["a1"].id)] == ["done"] * 2

    evacuation.return_to_service([server], e["user"])
    ok()
    assert db.session.get(Baremetal, e["a1"].id).status == "active"


def test_a_failed_migration_leaves_the_vm_on_its_server_and_releases_the_target(estate):
    e = estate
    vm = f.vm(e["tenant"], e["a1"], e["flavor"])
    db.session.commit()
    done = evacuation.evacuate([e["a1"]], e["user"], label=("baremetal", e["a1"].id, "a1"))
    target = done.moves[0].to_baremetal_id
    ok()
    answer_all(succeeded=False, message="hypervisor refused")
    ok()
    vm = db.session.get(VirtualMachine, vm.id)
    assert (vm.status, vm.baremetal_id) == ("active", e["a1"].id)
    assert "hypervisor refused" in vm.status_message
    target_row = db.session.get(Baremetal, target)
    assert target_row.available_cpu == target_row.total_cpu
    [failed] = evacuation.progress("baremetal", e["a1"].id)
    assert (failed.state, failed.message) == ("failed", "hypervisor refused")
    # Draining again offers the VM a new move.
    again = evacuation.preview([db.session.get(Baremetal, e["a1"].id)])
    assert [m.vm_id for m in again.moves] == [vm.id]


def test_stuck_vms_are_reported_with_reasons(estate):
    e = estate
    building = f.vm(e["tenant"], e["a1"], e["flavor"], status="provisioning")
    db.session.add(ProvisionJob(vm_id=building.id, action="create"))
    big = f.vm(e["tenant"], e["a1"], f.flavor(cpu=12, memory=8, storage=40))
    for other in ("a2", "b1", "b2"):  # leave 8 cores free elsewhere
        f.vm(e["tenant"], e[other], f.flavor(cpu=8, memory=8, storage=40))
    db.session.commit()
    ok()
    plan = evacuation.preview([e["a1"]])
    assert plan.moves == []
    reasons = {s.vm_id: s.reason for s in plan.stuck}
    assert reasons[building.id] == "is provisioning: drain again once it is active"
    assert reasons[big.id].startswith("nowhere to go:")
    assert "cpu" in reasons[big.id].lower()


def test_drain_twice_does_not_duplicate_jobs(estate):
    e = estate
    vm = f.vm(e["tenant"], e["a1"], e["flavor"])
    db.session.commit()
    evacuation.evacuate([e["a1"]], e["user"], label=("baremetal", e["a1"].id, "a1"))
    jobs_before = db.session.scalar(select(func.count(ProvisionJob.id)))
    server = db.session.get(Baremetal, e["a1"].id)
    again = evacuation.evacuate([server], e["user"], label=("baremetal", server.id, "a1"))
    ok()
    assert again.moves == []
    assert [s.vm_id for s in again.stuck] == [vm.id]
    assert again.stuck[0].reason.startswith("is already migrating to ")
    assert db.session.scalar(select(func.count(ProvisionJob.id))) == jobs_before


def test_a_migrating_vm_cannot_be_deleted_and_return_waits_for_the_migrations(estate):
    e = estate
    vm = f.vm(e["tenant"], e["a1"], e["flavor"])
    db.session.commit()
    evacuation.evacuate([e["a1"]], e["user"], label=("baremetal", e["a1"].id, "a1"))
    before = snapshot()
    with pytest.raises(jobs.JobError, match="moving to another server"):
        vms.delete_vm(db.session.get(VirtualMachine, vm.id), e["user"])
    db.session.rollback()
    with pytest.raises(evacuation.EvacuationRefused, match="still migrating off"):
        evacuation.return_to_service([db.session.get(Baremetal, e["a1"].id)], e["user"])
    assert snapshot() == before
    ok()
    answer_all()
    vms.delete_vm(db.session.get(VirtualMachine, vm.id), e["user"])  # once it has moved
    ok()
    assert db.session.get(VirtualMachine, vm.id).status == "deleting"


def test_return_to_service_of_an_active_server_is_refused(estate):
    with pytest.raises(evacuation.EvacuationRefused, match="no server here is in maintenance"):
        evacuation.return_to_service([estate["a1"]], estate["user"])


def test_request_migrate_refuses_a_vm_that_is_not_active(estate):
    e = estate
    vm = f.vm(e["tenant"], e["a1"], e["flavor"], status="error")
    db.session.commit()
    with pytest.raises(jobs.JobError, match="only an active VM can move"):
        jobs.request_migrate(vm, e["b1"].id, e["user"])
    db.session.rollback()
    ok()


def test_rack_drain_moves_everything_out_of_the_rack(estate):
    e = estate
    placed = [f.vm(e["tenant"], e[s], e["flavor"]) for s in ("a1", "a1", "a2")]
    db.session.commit()
    rack_servers = evacuation.servers_of_rack(e["rack_a"])
    done = evacuation.evacuate(rack_servers, e["user"], label=("rack", e["rack_a"].id, "A"))
    ok()
    assert {m.vm_id for m in done.moves} == {v.id for v in placed}
    assert {m.to_baremetal_id for m in done.moves} <= {e["b1"].id, e["b2"].id}
    assert {s.status for s in evacuation.servers_of_rack(e["rack_a"])} == {"maintenance"}
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "evacuate", AuditEvent.object_type == "rack")) == 1
    answer_all()
    ok()
    evacuation.return_to_service(evacuation.servers_of_rack(e["rack_a"]), e["user"])
    assert {s.status for s in evacuation.servers_of_rack(e["rack_a"])} == {"active"}


def test_control_planes_of_one_cluster_stay_on_distinct_servers(estate):
    e = estate
    cluster = f.cluster(e["tenant"], e["group"])
    cps = [f.vm(e["tenant"], e[s], e["flavor"], role="control-plane", k8s_cluster_id=cluster.id)
           for s in ("a1", "a2", "b1")]
    workers = [f.vm(e["tenant"], e["a1"], e["flavor"], role="worker", k8s_cluster_id=cluster.id)
               for _ in range(2)]
    db.session.commit()
    plan = evacuation.preview([e["a1"]])
    moves = {m.vm_id: m.to_baremetal_id for m in plan.moves}
    assert moves[cps[0].id] == e["b2"].id  # the only server without a control plane
    # workers spread: the two go to different servers (fewest members first)
    assert moves[workers[0].id] != moves[workers[1].id]
    # with b2 drained too, the control plane has nowhere to go
    plan = evacuation.preview([e["a1"], e["b2"]])
    reasons = {s.vm_id: s.reason for s in plan.stuck}
    assert "control planes stay on distinct servers" in reasons[cps[0].id]


def test_offline_servers_are_not_drained(estate):
    server = estate["a1"]
    server.status = "offline"
    db.session.commit()
    with pytest.raises(evacuation.EvacuationRefused, match="the servers are offline"):
        evacuation.evacuate([server], estate["user"], label=("baremetal", server.id, "x"))
    assert db.session.get(Baremetal, server.id).status == "offline"


def test_a_server_receiving_a_migration_cannot_go_offline_be_deleted_or_moved(estate):
    """A VM migrating to a server holds there: the server is not empty until it arrives."""
    from portal.baremetals import service as servers

    e = estate
    f.vm(e["tenant"], e["a1"], e["flavor"], name="traveller")
    db.session.commit()
    done = evacuation.evacuate([e["a1"]], e["user"], label=("baremetal", e["a1"].id, "a1"))
    target = db.session.get(Baremetal, done.moves[0].to_baremetal_id)
    before = snapshot()
    with pytest.raises(servers.ServerInvalid, match="traveller"):
        servers.delete_server(target)
    db.session.rollback()
    with pytest.raises(servers.ServerInvalid, match="traveller"):
        servers.change_status(db.session.get(Baremetal, target.id), "offline")
    db.session.rollback()
    with pytest.raises(servers.ServerInvalid):
        servers.move_server(db.session.get(Baremetal, target.id), None)
    db.session.rollback()
    assert snapshot() == before
    answer_all()
    ok()
