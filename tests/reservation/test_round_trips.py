"""The reservation's statements go to the database together where none needs an earlier one's
result (portal/scheduler/statements.together): five round trips whatever the group's size.
What that must not change, on SQLite and PostgreSQL:

- a server that lost its room since the read still costs only another attempt, even when
  the group's update sent with it would take the group below zero (it must change nothing
  rather than trip the counters' CHECK constraints);
- a deadlock or a busy database raised by the driver itself (the hot path runs on its
  cursor, not through SQLAlchemy) is retried like one SQLAlchemy wraps; any other error is
  not, and leaves nothing behind."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
from sqlalchemy import func, select

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


def test_a_reservation_is_five_round_trips_whatever_the_group(one_slot, monkeypatch):
    grp, tenant, flavor, _ = one_slot
    for i in range(30):
        f.server(group=grp, name=f"more-{i:02d}", cpu=64, memory=256, storage=2000)
    db.session.commit()
    batches: list[int] = []
    real = statements.together

    def counted(calls):
        calls = list(calls)
        batches.append(len(calls))
        return real(calls)

    monkeypatch.setattr(statements, "together", counted)
    place(grp, tenant, flavor, "vm-1")
    # lock + usage + servers; the VM; its job + audit event; its server + the group
    assert batches == [3, 1, 2, 2]


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
    real = layer._hosts

    def hosts(group_id, rows=None):
        reads.append(group_id)
        return stale if len(reads) == 1 else real(group_id, rows)

    monkeypatch.setattr(layer, "_hosts", hosts)
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
    return psycopg.errors.CheckViolation("violates check constraint")


def _failing_once(monkeypatch, error: Exception) -> list[int]:
    """The first batch that moves the counters raises ``error``, as the driver would."""
    real = statements.together
    raised: list[int] = []

    def together(calls):
        calls = list(calls)
        if not raised and calls[-1][0] is statements.TAKE_FROM_GROUP:
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
