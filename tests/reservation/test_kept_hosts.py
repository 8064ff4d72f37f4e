"""A reservation keeps what it read of a group's servers under the group's HostsVersion and
re-reads only their free counters while the version stands (portal/scheduler/reservation.py,
_current_hosts). What that must never do, on SQLite and PostgreSQL: plan on a server's old
name, status, place, rack, group or size. Every such change — through the ORM or a bulk
statement, by any process — gives the group a new version in the changing transaction
(the database's triggers), so the next reservation reads the group afresh."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from portal.extensions import begin_write, db
from portal.models import Baremetal, HostsVersion, Rack, VirtualMachine
from portal.scheduler import reservation as layer
from portal.scheduler import statements
from portal.scheduler.reservation import NodeSpec, read_placement, reserve
from tests import factories as f


@pytest.fixture
def estate(any_app):
    """A group of three servers (two in one rack), a tenant with quota, a flavor."""
    rack = f.rack(name="rack-a")
    grp = f.group()
    servers = [f.server(group=grp, rack=rack, name="bm-1", rack_unit=1),
               f.server(group=grp, rack=rack, name="bm-2", rack_unit=3),
               f.server(group=grp, name="bm-3")]
    other = f.group()
    f.server(group=other, name="bm-other")
    tenant, flavor = f.tenant(), f.flavor()
    f.quota(tenant, grp)
    db.session.commit()
    return grp, other, tenant, flavor, [s.id for s in servers], rack.id


def _place(grp, tenant, flavor, name):
    return reserve(tenant, grp, [NodeSpec(name, "standalone", flavor)], user=None)


def _planned(grp, tenant) -> list:
    """The servers a reservation would plan on now, as Host values."""
    begin_write()
    hosts = list(read_placement(tenant, grp, lock=True).hosts)
    db.session.rollback()
    return hosts


def _fresh(grp) -> list:
    hosts = list(layer._hosts(grp.id))
    db.session.rollback()
    return hosts


def _full_reads(monkeypatch) -> list[int]:
    reads: list[int] = []
    real = statements.VERSIONED_HOSTS.rows

    def counted(params):
        reads.append(params["group"])
        return real(params)

    monkeypatch.setattr(statements.VERSIONED_HOSTS, "rows", counted)
    return reads


def _version(group_id):
    version = db.session.scalar(select(HostsVersion.version)
                                .where(HostsVersion.group_id == group_id))
    db.session.rollback()
    return version


def test_while_the_version_stands_only_the_free_counters_are_read(estate, monkeypatch):
    grp, _, tenant, flavor, _, _ = estate
    reads = _full_reads(monkeypatch)
    version = _version(grp.id)
    _place(grp, tenant, flavor, "vm-1")
    _place(grp, tenant, flavor, "vm-2")
    _place(grp, tenant, flavor, "vm-3")
    assert len(reads) <= 1, "read in full once at most, then kept"
    # the counters moved three times, and the version did not: they are not planned columns
    assert _version(grp.id) == version is not None
    assert _planned(grp, tenant) == _fresh(grp)
    assert len(reads) <= 1


def _rename_server(ids, rack_id, other):
    db.session.get(Baremetal, ids[0]).name = "bm-1-renamed"


def _drain_server(ids, rack_id, other):
    db.session.execute(update(Baremetal).where(Baremetal.id == ids[1])
                       .values(status="maintenance"))


def _move_dc(ids, rack_id, other):
    db.session.get(Baremetal, ids[2]).dc = "dc9"


def _move_region(ids, rack_id, other):
    db.session.execute(update(Baremetal).where(Baremetal.id.in_(ids)).values(region="r9"))


def _leave_rack(ids, rack_id, other):
    server = db.session.get(Baremetal, ids[0])
    server.rack_id = server.rack_unit = server.rack_height_u = None


def _rename_rack(ids, rack_id, other):
    db.session.get(Rack, rack_id).name = "rack-renamed"


def _resize(ids, rack_id, other):
    db.session.execute(update(Baremetal).where(Baremetal.id == ids[2])
                       .values(total_cpu=Baremetal.total_cpu + 8,
                               available_cpu=Baremetal.available_cpu + 8))


def _join_group(ids, rack_id, other):
    db.session.execute(update(Baremetal).where(Baremetal.name == "bm-other")
                       .values(group_id=db.session.get(Baremetal, ids[0]).group_id))


def _leave_group(ids, rack_id, other):
    db.session.execute(update(Baremetal).where(Baremetal.id == ids[2]).values(group_id=other))


def _new_server(ids, rack_id, other):
    f.server(group=db.session.get(Baremetal, ids[0]).group, name="bm-new")


def _delete_server(ids, rack_id, other):
    db.session.execute(delete(Baremetal).where(Baremetal.id == ids[2]))


CHANGES = [_rename_server, _drain_server, _move_dc, _move_region, _leave_rack, _rename_rack,
           _resize, _join_group, _leave_group, _new_server, _delete_server]


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__[1:])
def test_every_change_the_planner_sees_is_read_afresh(estate, change, monkeypatch):
    grp, other, tenant, flavor, ids, rack_id = estate
    _place(grp, tenant, flavor, "vm-1")  # the group's servers are kept now
    before = _planned(grp, tenant)
    version = _version(grp.id)

    change(ids, rack_id, other.id)
    db.session.commit()

    assert _version(grp.id) != version
    after = _planned(grp, tenant)
    assert after == _fresh(grp)
    assert after != before


def test_a_change_rolled_back_leaves_the_kept_servers_in_use(estate, monkeypatch):
    grp, _, tenant, flavor, ids, _ = estate
    _place(grp, tenant, flavor, "vm-1")
    version = _version(grp.id)
    db.session.get(Baremetal, ids[0]).name = "never"
    db.session.flush()
    db.session.rollback()
    reads = _full_reads(monkeypatch)
    assert _version(grp.id) == version
    assert _planned(grp, tenant) == _fresh(grp)
    assert reads == []


def test_a_placement_after_a_change_lands_where_the_change_allows(estate):
    """The drained server is not chosen again, though it was kept as active."""
    grp, _, tenant, flavor, ids, _ = estate
    _place(grp, tenant, flavor, "vm-1")
    db.session.execute(update(Baremetal).where(Baremetal.id.in_(ids[:2]))
                       .values(status="maintenance"))
    db.session.commit()
    placed = [_place(grp, tenant, flavor, f"vm-{i}")[0].baremetal_id for i in range(2, 6)]
    assert set(placed) == {ids[2]}
    assert db.session.scalar(select(VirtualMachine.baremetal_id)
                             .where(VirtualMachine.name == "vm-5")) == ids[2]
