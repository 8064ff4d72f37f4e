"""The reservation's statements go to the database together where none needs an earlier one's
result (portal/scheduler/statements.together): five round trips whatever the group's size,
four on PostgreSQL, where the COMMIT travels with the counters' updates (take_and_commit)
unless something else must commit with the VMs. What that must not change, on SQLite and
PostgreSQL:

- a server that lost its room since the read still costs only another attempt, even when
  the group's update sent with it would take the group below zero (it must change nothing
  rather than trip the counters' CHECK constraints);
- counters of a group drifted below its servers' sum are an error, never a placement;
- a caller's rows that must commit with the VMs (``before_commit``) still do, or nothing;
- a deadlock or a busy database raised by the driver itself (the hot path runs on its
  cursor, not through SQLAlchemy) is retried like one SQLAlchemy wraps; any other error is
  not, and leaves nothing behind."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
from sqlalchemy import func, select, update

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import AuditEvent, Baremetal, BaremetalGroup, ProvisionJob, VirtualMachine
from portal.scheduler import reservation as layer
from portal.scheduler import statements
from portal.scheduler.reservation import NodeSpec, reserve
from tests import factories as f


@pytest.fixture
def one_slot(any_app):
    """A group whose only server has room for exactly one VM of the flavor."""
    grp = f.group()
    server = f.server(group=grp, name="only", cpu=4, memory=8, storage=50)
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)
    db.session.commit()
    return grp, tenant, flavor, server.id


def place(grp, tenant, flavor, name):
    return reserve(tenant, grp, [NodeSpec(name, "standalone", flavor)], user=None)


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def _batches(monkeypatch) -> list[list]:
    """The statements of every together() call, as they are sent."""
    batches: list[list] = []
    real = statements.together

    def counted(calls):
        calls = list(calls)
        batches.append([statement for statement, _ in calls])
        return real(calls)

    monkeypatch.setattr(statements, "together", counted)
    return batches


def _on_postgresql(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_a_reservation_takes_as_many_round_trips_whatever_the_group(one_slot, monkeypatch,
                                                                   any_app):
    grp, tenant, flavor, _ = one_slot
    for i in range(30):
        f.server(group=grp, name=f"more-{i:02d}", cpu=64, memory=256, storage=2000)
    db.session.commit()
    batches = _batches(monkeypatch)
    place(grp, tenant, flavor, "vm-1")
    # lock + usage + servers; the VM; its job + audit event; its server + the group (+ the
    # COMMIT on PostgreSQL; on SQLite the session commits after, a fifth round trip)
    assert [len(batch) for batch in batches] == [3, 1, 2, 3 if _on_postgresql(any_app) else 2]
    if _on_postgresql(any_app):
        assert batches[-1] == [statements.TAKE_FROM_SERVER_OR_ABORT, statements.DRAW_FROM_GROUP,
                               statements.COMMIT]
    db.session.rollback()  # what was committed stays
    assert count(VirtualMachine) == 1
    assert db.session.get(Baremetal, one_slot[3]).available_cpu == 0
    assert counter_drift() == []


def test_rows_that_must_commit_with_the_vms_do_or_nothing_does(one_slot, monkeypatch, any_app):
    """With a before_commit hook the COMMIT is not sent with the counters: the hook's rows
    and the VMs commit together, and a hook that fails leaves neither."""
    grp, tenant, flavor, server_id = one_slot
    batches = _batches(monkeypatch)

    def fails(vms):
        db.session.add(AuditEvent(username="hook", action="joined", object_type="vm_group",
                                  object_id=vms[0].id, object_label="g", changes={}))
        db.session.flush()
        raise ValueError("the hook failed")

    with pytest.raises(ValueError):
        reserve(tenant, grp, [NodeSpec("vm-1", "standalone", flavor)], user=None,
                before_commit=fails)
    assert statements.COMMIT not in batches[-1]
    db.session.rollback()
    assert (count(VirtualMachine), count(ProvisionJob), count(AuditEvent)) == (0, 0, 0)
    assert db.session.get(Baremetal, server_id).available_cpu == 4

    def joins(vms):
        db.session.add(AuditEvent(username="hook", action="joined", object_type="vm_group",
                                  object_id=vms[0].id, object_label="g", changes={}))

    reserve(tenant, grp, [NodeSpec("vm-1", "standalone", flavor)], user=None,
            before_commit=joins)
    db.session.rollback()
    assert (count(VirtualMachine), count(ProvisionJob), count(AuditEvent)) == (1, 1, 2)
    assert counter_drift() == []


def test_a_group_whose_counters_drifted_below_its_servers_is_an_error(one_slot, any_app):
    """Every server has the room but the group's counters say it has not: the counters
    drifted (a bug elsewhere). The reservation raises and writes nothing — on PostgreSQL the
    group's CHECK constraint stops the COMMIT sent with it."""
    grp, tenant, flavor, server_id = one_slot
    db.session.execute(update(BaremetalGroup).where(BaremetalGroup.id == grp.id)
                       .values(available_cpu=0))
    db.session.commit()

    with pytest.raises(RuntimeError, match="free counters are below its servers' sum"):
        place(grp, tenant, flavor, "vm-1")

    db.session.rollback()
    assert (count(VirtualMachine), count(ProvisionJob), count(AuditEvent)) == (0, 0, 0)
    assert db.session.get(Baremetal, server_id).available_cpu == 4
    assert db.session.get(BaremetalGroup, grp.id).available_cpu == 0


def test_a_lost_server_with_the_group_near_empty_is_another_attempt(one_slot, monkeypatch):
    """The planner is handed the group as it was before another VM took its last slot: the
    server's guarded update finds no room, and the group's update in the same round trip —
    which would take the group below zero — changes nothing. The attempt is planned again
    on a fresh read and refused for capacity, not failed by a CHECK constraint."""
    grp, tenant, flavor, server_id = one_slot
    stale = layer._hosts(grp.id)
    db.session.rollback()
    place(grp, tenant, flavor, "first")
    reads = []
    real = layer._current_hosts

    def hosts(group_id, version, free):
        reads.append(group_id)
        return stale if len(reads) == 1 else real(group_id, version, free)

    monkeypatch.setattr(layer, "_current_hosts", hosts)
    with pytest.raises(layer.PlacementRefused) as refused:
        place(grp, tenant, flavor, "second")
    assert refused.value.refusal.code == "insufficient_capacity"
    assert len(reads) == 2
    db.session.rollback()
    assert count(VirtualMachine) == 1
    group = db.session.get(BaremetalGroup, grp.id)
    assert (group.available_cpu, group.available_memory, group.available_storage) == (0, 0, 0)
    assert counter_drift() == []


def _transient(app) -> Exception:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return sqlite3.OperationalError("database is locked")
    return psycopg.errors.DeadlockDetected("deadlock detected")


def _permanent(app) -> Exception:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return sqlite3.IntegrityError("CHECK constraint failed")
    return psycopg.errors.DiskFull("could not extend file")


def _failing_once(monkeypatch, error: Exception) -> list[int]:
    """The first batch that moves the counters raises ``error``, as the driver would."""
    real = statements.together
    raised: list[int] = []

    def together(calls):
        calls = list(calls)
        # the counters' batch ends with the group's update, or on PostgreSQL with COMMIT
        if not raised and calls[-1][0] in (statements.TAKE_FROM_GROUP, statements.COMMIT):
            raised.append(1)
            raise error
        return real(calls)

    monkeypatch.setattr(statements, "together", together)
    return raised


def test_a_deadlock_raised_by_the_driver_is_retried(one_slot, monkeypatch, any_app):
    grp, tenant, flavor, server_id = one_slot
    raised = _failing_once(monkeypatch, _transient(any_app))

    (vm,) = place(grp, tenant, flavor, "vm-1")

    assert raised == [1]
    assert vm.baremetal_id == server_id
    assert (count(VirtualMachine), count(ProvisionJob), count(AuditEvent)) == (1, 1, 1)
    assert db.session.get(Baremetal, server_id).available_cpu == 0
    assert counter_drift() == []


def test_any_other_driver_error_is_raised_and_writes_nothing(one_slot, monkeypatch, any_app):
    grp, tenant, flavor, server_id = one_slot
    error = _permanent(any_app)
    _failing_once(monkeypatch, error)

    with pytest.raises(type(error)):
        place(grp, tenant, flavor, "vm-1")

    db.session.rollback()
    assert (count(VirtualMachine), count(ProvisionJob), count(AuditEvent)) == (0, 0, 0)
    assert db.session.get(Baremetal, server_id).available_cpu == 4
    assert counter_drift() == []
