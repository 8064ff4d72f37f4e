"""Flavors: the catalogue list, create / edit / retire, and what editing never changes."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, VirtualMachine
from portal.models import VirtualMachineSpecification as Flavor
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.web.test_lists import count_queries

HX = {"HX-Request": "true"}


@pytest.fixture
def ops(app):
    f.user("ops", operator=True)
    f.user("acme-admin", tenants=(f.tenant(name="acme").name,))
    db.session.commit()
    client = app.test_client()
    log_in(client, "ops", f.PASSWORD)
    return client


def names(client, url):
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert "<html" not in html
    return re.findall(r'<a href="/flavors/\d+">([^<]+)</a>', html)


def post(client, url, **data):
    token = csrf_token_from(client.get("/flavors/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_list_filters_sort_paging_search_and_csv(app, ops):
    for i in range(30):
        f.flavor(name=f"std-{i:02d}", cpu=i + 1, generation=1 + i % 3, is_active=i % 10 != 0)
    db.session.commit()
    assert names(ops, "/flavors/?active=no") == ["std-00", "std-10", "std-20"]
    assert names(ops, "/flavors/?generation=3&per_page=50")[:2] == ["std-02", "std-05"]
    assert names(ops, "/flavors/?sort=-cpu")[0] == "std-29"
    assert names(ops, "/flavors/?per_page=25&page=2") == [f"std-{i}" for i in range(25, 30)]
    assert names(ops, "/flavors/?q=STD-1") == [f"std-{i}" for i in range(10, 20)]
    table = list(csv.reader(io.StringIO(
        ops.get("/flavors/?active=no&format=csv").get_data(as_text=True))))
    assert table[0][:6] == ["Name", "CPU", "Memory (GiB)", "Storage (GiB)", "Generation", "Active"]
    assert [r[0] for r in table[1:]] == ["std-00", "std-10", "std-20"]
    assert table[1][5] == "False"


def test_create_validates_and_audits(app, ops):
    bad = post(ops, "/flavors/new", name="Standard-4C8G", cpu="0", memory="8", storage="-1",
               generation="1")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "CPU is at least 1." in html and "Storage is at least 0." in html
    missing = post(ops, "/flavors/new", name="x", cpu="", memory="8", storage="1", generation="1")
    assert missing.status_code == 422 and "Enter a whole number." in missing.get_data(as_text=True)
    assert db.session.scalars(select(Flavor)).all() == []
    ok = post(ops, "/flavors/new", name="Standard-4C8G", cpu="4", memory="8", storage="80",
              generation="2", is_active="y")
    assert ok.status_code == 302
    flavor = db.session.scalar(select(Flavor))
    assert (flavor.cpu, flavor.generation, flavor.is_active) == (4, 2, True)
    clash = post(ops, "/flavors/new", name="Standard-4C8G", cpu="4", memory="8", storage="80",
                 generation="2")
    assert "already exists" in clash.get_data(as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "flavor"))
    assert event.action == "create" and event.changes["cpu"] == {"from": None, "to": 4}


def test_editing_a_flavor_never_changes_existing_vms(app, ops):
    flavor = f.flavor(name="m.4", cpu=4, memory=8, storage=50)
    vm = f.vm(f.tenant(), f.server(), flavor)
    db.session.commit()
    response = post(ops, f"/flavors/{flavor.id}/edit", name="m.4", cpu="8", memory="16",
                    storage="50", generation="2", is_active="y")
    assert response.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Flavor, flavor.id).cpu, db.session.get(VirtualMachine, vm.id).cpu) == (
        8, 4)
    page = ops.get(f"/flavors/{flavor.id}").get_data(as_text=True)
    assert "CPU 4 → 8, Memory (GiB) 8 → 16, Generation 1 → 2, by user ops" in page
    assert "never changes existing VMs" in page


def test_retire_and_offer_again(app, ops):
    flavor = f.flavor(name="old.2")
    db.session.commit()
    assert post(ops, f"/flavors/{flavor.id}/retire").status_code == 302
    assert db.session.get(Flavor, flavor.id).is_active is False
    admin = app.test_client()
    log_in(admin, "acme-admin", f.PASSWORD)
    assert "old.2" in admin.get("/flavors/").get_data(as_text=True)  # stays listed
    assert "old.2" not in admin.get("/vms/new").get_data(as_text=True)  # cannot be chosen
    assert post(ops, f"/flavors/{flavor.id}/restore").status_code == 302
    assert db.session.get(Flavor, flavor.id).is_active is True
    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "flavor").order_by(AuditEvent.id)).all()
    assert actions == ["retire", "restore"]
    assert admin.post(f"/flavors/{flavor.id}/retire").status_code in (400, 403)


def test_detail_query_count_does_not_grow(app, ops):
    flavor = f.flavor()
    db.session.commit()
    url = f"/flavors/{flavor.id}"
    ops.get(url)
    with count_queries() as few:
        ops.get(url)
    srv, tenant = f.server(cpu=999, memory=9999, storage=99999), f.tenant()
    for _ in range(30):
        f.vm(tenant, srv, db.session.get(Flavor, flavor.id))
    db.session.commit()
    with count_queries() as many:
        html = ops.get(url).get_data(as_text=True)
    assert many["n"] == few["n"] and ">30<" in html
