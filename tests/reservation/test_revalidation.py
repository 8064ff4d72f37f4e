"""A reservation plans on what it read, and what it read may be out of date by the time it
locks the chosen server: another request took the room, an operator drained the server or
moved it to another group. The guarded UPDATE re-checks the row under its lock; a stale
read never over-commits a server, it only costs another attempt. On SQLite and PostgreSQL.

Staleness is made deterministic here by handing the planner an old copy of the group."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.types import JSON

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Baremetal,
    ProvisionJob,
    VirtualMachine,
    utcnow,
)
from portal.scheduler import HostTable, Resources
from portal.scheduler import reservation as layer
from portal.scheduler.reservation import MAX_ATTEMPTS, NodeSpec, PlacementRefused, reserve
from portal.scheduler.statements import DriverStatement
from tests import factories as f


@pytest.fixture
def two_servers(any_app):
    """'tight' has room for exactly one VM of the flavor, 'roomy' for many: best fit takes
    'tight' first. The tenant's quota is unlimited."""
    grp = f.group()
    tight = f.server(group=grp, name="a-tight", cpu=4, memory=8, storage=50)
    roomy = f.server(group=grp, name="b-roomy", cpu=64, memory=256, storage=2000)
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)
    db.session.commit()
    return grp, tenant, flavor, tight.id, roomy.id


def stale_reads(monkeypatch, stale: list[HostTable], reads: list[int] | None = None) -> None:
    """The first reads of the group's servers return these old copies, then the truth."""
    real = layer._current_hosts

    def hosts(group_id, version, free):
        if reads is not None:
            reads.append(group_id)
        return stale.pop(0) if stale else real(group_id, version, free)

    monkeypatch.setattr(layer, "_current_hosts", hosts)


def snapshot(group_id) -> HostTable:
    return layer._hosts(group_id)


def held(server_id) -> Resources:
    db.session.expire_all()
    s = db.session.get(Baremetal, server_id)
    return Resources(s.available_cpu, s.available_memory, s.available_storage)


def place(grp, tenant, flavor, name="vm-1"):
    return reserve(tenant, grp, [NodeSpec(name, "standalone", flavor)], user=None,
                   strategy="best_fit")


def test_a_server_filled_since_the_read_is_not_over_committed(two_servers, monkeypatch):
    grp, tenant, flavor, tight, roomy = two_servers
    before = snapshot(grp.id)  # 'tight' still has its room here
    db.session.rollback()
    (first,) = place(grp, tenant, flavor, "first")
    assert first.baremetal_id == tight
    reads: list[int] = []
    stale_reads(monkeypatch, [before], reads)

    (second,) = place(grp, tenant, flavor, "second")

    assert second.baremetal_id == roomy, "planned on 'tight', which another VM had filled"
    assert len(reads) == 2, "the lost race is planned again with a fresh read"
    assert held(tight) == Resources(0, 0, 0)
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 2  # nothing left over
    assert db.session.scalar(select(func.count(ProvisionJob.id))) == 2
    assert counter_drift() == []
    # The VM handed back is the row that was written, even where SQLite reissued the id
    # of the attempt that was rolled back.
    assert second in db.session
    assert (second.name, second.baremetal.name) == ("second", "b-roomy")


def test_a_server_drained_since_the_read_gets_nothing(two_servers, monkeypatch):
    grp, tenant, flavor, tight, roomy = two_servers
    before = snapshot(grp.id)
    db.session.rollback()
    db.session.get(Baremetal, tight).status = "maintenance"
    db.session.commit()
    stale_reads(monkeypatch, [before])

    (vm,) = place(grp, tenant, flavor)

    assert vm.baremetal_id == roomy
    assert held(tight) == Resources(4, 8, 50)
    assert counter_drift() == []


def test_a_server_moved_to_another_group_since_the_read_gets_nothing(two_servers, monkeypatch):
    grp, tenant, flavor, tight, roomy = two_servers
    before = snapshot(grp.id)
    db.session.rollback()
    other = f.group()
    db.session.flush()
    server = db.session.get(Baremetal, tight)
    server.group_id = other.id
    grp.total_cpu, grp.total_memory, grp.total_storage = 64, 256, 2000
    grp.available_cpu, grp.available_memory, grp.available_storage = 64, 256, 2000
    other.total_cpu = other.available_cpu = 4
    other.total_memory = other.available_memory = 8
    other.total_storage = other.available_storage = 50
    db.session.commit()
    stale_reads(monkeypatch, [before])

    (vm,) = place(grp, tenant, flavor)

    assert vm.baremetal_id == roomy
    assert held(tight) == Resources(4, 8, 50)
    assert counter_drift() == []


def test_a_read_that_stays_stale_ends_in_a_busy_refusal_that_wrote_nothing(
    two_servers, monkeypatch
):
    grp, tenant, flavor, tight, roomy = two_servers
    before = snapshot(grp.id)
    db.session.rollback()
    place(grp, tenant, flavor, "first")
    stale_reads(monkeypatch, [before] * MAX_ATTEMPTS)

    with pytest.raises(PlacementRefused) as refused:
        place(grp, tenant, flavor, "second")

    assert refused.value.refusal.code == "conflict"
    db.session.rollback()
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 1
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 1
    assert counter_drift() == []


def test_rows_written_on_the_driver_carry_the_defaults_sqlalchemy_would_give(two_servers):
    grp, tenant, flavor, tight, roomy = two_servers
    server_updated = db.session.get(Baremetal, tight).updated_at
    db.session.rollback()
    (vm,) = place(grp, tenant, flavor)
    db.session.expire_all()
    vm = db.session.get(VirtualMachine, vm.id)
    assert (vm.status, vm.status_message, vm.role, vm.k8s_cluster_id) == (
        "provisioning", "", "standalone", None
    )
    assert vm.created_at is not None and vm.updated_at is not None
    job = db.session.scalar(select(ProvisionJob).where(ProvisionJob.vm_id == vm.id))
    assert (job.action, job.status, job.attempts, job.result_message, job.claimed_by) == (
        "create", "queued", 0, "", None
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_id == vm.id))
    assert (event.username, event.action, event.object_type, event.object_label) == (
        "system", "place", "virtual_machine", "vm-1"
    )
    assert event.changes == {
        "baremetal": {"from": None, "to": "a-tight"},
        "status": {"from": None, "to": "provisioning"},
        "flavor": {"from": None, "to": flavor.name},
    }
    assert db.session.get(Baremetal, tight).updated_at > server_updated  # onupdate applied


def test_a_column_added_later_with_a_python_default_is_filled(any_app):
    probe = Table(
        "driver_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("label", String(32), nullable=False),
        Column("note", String(32), nullable=False, default="n/a"),
        Column("data", JSON, nullable=False, default=dict),
        Column("at", DateTime, nullable=False, default=utcnow),
    )
    connection = db.session.connection()
    probe.create(connection)
    try:
        write = DriverStatement(insert(probe), columns=["label", "note", "data", "at"], many=True)
        write.execute_many([{"label": "one"}, {"label": "two", "note": "given", "data": {"k": 1}}])
        rows = connection.execute(select(probe).order_by(probe.c.id)).all()
        assert [(r.label, r.note, r.data) for r in rows] == [
            ("one", "n/a", {}), ("two", "given", {"k": 1})
        ]
        assert all(r.at is not None for r in rows)
    finally:
        probe.drop(connection)
        db.session.rollback()
