"""Sorting by a related name through a foreign key that may be empty (VMs by server): the
rows without one come last ascending and first descending, on SQLite as on PostgreSQL,
and every page holds the rows the whole sorted list would put there."""

import re

import pytest
from flask import current_app

from portal.extensions import db
from portal.models import VirtualMachine
from tests import factories as f
from tests.conftest import log_in

VM_LINK = re.compile(r'href="/vms/(\d+)"')


def estate():
    tenant, flavor, grp = f.tenant(), f.flavor(), f.group()
    # Server names in another order than their ids, several VMs a server.
    servers = [f.server(group=grp, name=f"bm-{name}") for name in ("c", "a", "d", "b")]
    for i in range(11):
        f.vm(tenant, servers[i % 4], flavor)
    for _ in range(4):  # failed before placement: no server
        db.session.add(VirtualMachine(name=f"vm-lost-{f.n()}", tenant=tenant, spec=flavor,
                                      cpu=1, memory=1, storage=1, status="error"))
    db.session.commit()


def expected(descending: bool) -> list[int]:
    rows = db.session.query(VirtualMachine).all()
    placed = sorted((r for r in rows if r.baremetal), key=lambda r: (r.baremetal.name, r.id))
    lost = sorted((r for r in rows if not r.baremetal), key=lambda r: r.id)
    ordered = [r.id for r in placed + lost]
    return ordered[::-1] if descending else ordered


@pytest.mark.parametrize("backend", ["app", "pg_app"])
@pytest.mark.parametrize("sort", ["server", "-server"])
@pytest.mark.parametrize("per_page", [5, 10, 25])
def test_every_page_holds_its_share_of_the_whole_order(request, monkeypatch, backend, sort,
                                                        per_page):
    app = request.getfixturevalue(backend)
    estate()
    f.user("op", operator=True)
    db.session.commit()
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    want = expected(sort.startswith("-"))
    monkeypatch.setitem(current_app.config, "PER_PAGE_CHOICES", (per_page,))
    got = []
    for page in range(1, -(-len(want) // per_page) + 1):
        html = client.get(f"/vms/?sort={sort}&per_page={per_page}&page={page}",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        got += [int(i) for i in dict.fromkeys(VM_LINK.findall(html))]
    assert got == want


SERVER_LINK = re.compile(r'href="/servers/(\d+)"')


@pytest.mark.parametrize("backend", ["app", "pg_app"])
@pytest.mark.parametrize("sort", ["rack", "-rack"])
def test_servers_by_rack_put_the_unracked_where_nulls_sort(request, monkeypatch, backend,
                                                            sort):
    """A rack is joined on two columns (rack and its height): the same split."""
    app = request.getfixturevalue(backend)
    racks = [f.rack(name=name) for name in ("r-b", "r-a")]
    servers = [f.server(rack=racks[i % 2], rack_unit=i + 1) for i in range(5)]
    servers += [f.server() for _ in range(3)]
    f.user("op", operator=True)
    db.session.commit()
    placed = sorted((s for s in servers if s.rack), key=lambda s: (s.rack.name, s.id))
    want = [s.id for s in placed] + sorted(s.id for s in servers if not s.rack)
    if sort.startswith("-"):
        want.reverse()
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    monkeypatch.setitem(current_app.config, "PER_PAGE_CHOICES", (3,))
    got = []
    for page in (1, 2, 3):
        html = client.get(f"/servers/?sort={sort}&per_page=3&page={page}",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        got += [int(i) for i in dict.fromkeys(SERVER_LINK.findall(html))]
    assert got == want
