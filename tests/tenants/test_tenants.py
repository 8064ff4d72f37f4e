"""Tenants: the list with what each tenant holds, the detail page, tenant CRUD."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
from portal.tenants.service import tenant_stats
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.web.test_lists import count_queries

HX = {"HX-Request": "true"}


@pytest.fixture
def estate(app):
    grp = f.group(name="g1")
    srv = f.server(group=grp, cpu=256, memory=1024, storage=10000)
    small, large = f.flavor(cpu=2, memory=4, storage=10), f.flavor(cpu=8, memory=32, storage=10)
    acme = f.tenant(name="acme", contact="ops@acme.test")
    globex = f.tenant(name="globex", contact="noc@globex.test")
    f.tenant(name="empty-co")
    for _ in range(3):
        f.vm(acme, srv, small)
    f.vm(acme, srv, large, status="deleted")  # history: neither counted nor holding
    f.vm(acme, srv, large, status="error")  # counted as a VM, holds nothing
    f.vm(globex, srv, large)
    f.cluster(acme, grp)
    f.cluster(acme, grp, status="deleted")
    f.quota(acme, grp, cpu_limit=100)
    f.user("ops", operator=True)
    f.user("acme-admin", tenants=("acme",))
    db.session.commit()
    return SimpleNamespace(**locals())


@pytest.fixture
def ops(app, estate):
    client = app.test_client()
    log_in(client, "ops", f.PASSWORD)
    return client


def rows(client, url):
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="list-table"')
    out = []
    for tr in html.split("<tr>")[2:]:
        name = re.search(r'<a href="/tenants/\d+">([^<]+)</a>', tr).group(1)
        nums = re.findall(r'<td class="num">([^<]*)</td>', tr)
        out.append((name, *nums))
    return out


def test_list_shows_vms_clusters_and_resources_in_use(ops, estate):
    assert rows(ops, "/tenants/") == [
        ("acme", "4", "1", "6", "12"),
        ("empty-co", "0", "0", "0", "0"),
        ("globex", "1", "0", "8", "32"),
    ]
    assert [r[0] for r in rows(ops, "/tenants/?sort=-cpu")] == ["globex", "acme", "empty-co"]
    assert [r[0] for r in rows(ops, "/tenants/?sort=-vms")] == ["acme", "globex", "empty-co"]
    assert [r[0] for r in rows(ops, "/tenants/?sort=clusters")][-1] == "acme"
    assert [r[0] for r in rows(ops, "/tenants/?q=NOC@")] == ["globex"]


def test_totals_and_their_sorts_on_both_databases(any_app):
    """Only live VMs count, only holding ones add CPU and memory: a tenant whose VMs are all
    deleted or all in error sorts with the tenant that has none, ties broken by creation."""
    srv = f.server(cpu=256, memory=1024, storage=10000)
    small, large = f.flavor(cpu=2, memory=4, storage=10), f.flavor(cpu=8, memory=32, storage=10)
    made = {name: f.tenant(name=name)
            for name in ("mixed", "only-error", "only-deleted", "moving", "none")}
    for flavor, status in ((small, "active"), (small, "active"), (large, "pending"),
                           (large, "error"), (large, "deleted")):
        f.vm(made["mixed"], srv, flavor, status=status)
    for _ in range(2):
        f.vm(made["only-error"], srv, large, status="error")
    f.vm(made["only-deleted"], srv, large, status="deleted")
    f.vm(made["moving"], srv, large, status="migrating")
    f.vm(made["moving"], srv, small, status="deleting")
    f.user("ops", operator=True)
    db.session.commit()
    stats = {tenant.name: tenant_stats().get(tenant.id) for tenant in made.values()}
    assert stats == {
        "mixed": {"vms": 4, "clusters": 0, "cpu": 12, "memory": 40},
        "only-error": {"vms": 2, "clusters": 0, "cpu": 0, "memory": 0},
        "only-deleted": {"vms": 0, "clusters": 0, "cpu": 0, "memory": 0},
        "moving": {"vms": 2, "clusters": 0, "cpu": 10, "memory": 36},
        "none": {"vms": 0, "clusters": 0, "cpu": 0, "memory": 0},
    }
    assert all(type(v) is int for row in stats.values() for v in row.values())
    client = any_app.test_client()
    log_in(client, "ops", f.PASSWORD)
    shown = {sort: [r[0] for r in rows(client, f"/tenants/?sort={sort}")]
             for sort in ("cpu", "-cpu", "vms", "-vms", "memory", "-memory")}
    assert shown == {
        "cpu": ["only-error", "only-deleted", "none", "moving", "mixed"],
        "-cpu": ["mixed", "moving", "none", "only-deleted", "only-error"],
        "vms": ["only-deleted", "none", "only-error", "moving", "mixed"],
        "-vms": ["mixed", "moving", "only-error", "none", "only-deleted"],
        "memory": ["only-error", "only-deleted", "none", "moving", "mixed"],
        "-memory": ["mixed", "moving", "none", "only-deleted", "only-error"],
    }
    assert rows(client, "/tenants/?sort=-cpu")[0][1:] == ("4", "0", "12", "40")


def test_list_paging_and_csv(ops, estate):
    for i in range(30):
        f.tenant(name=f"t-{i:02d}")
    db.session.commit()
    page2 = rows(ops, "/tenants/?per_page=25&page=2")
    assert [r[0] for r in page2] == ["t-22", "t-23", "t-24", "t-25", "t-26", "t-27", "t-28",
                                     "t-29"]
    response = ops.get("/tenants/?sort=-memory&format=csv")
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["Name", "Contact", "VMs", "Clusters", "CPU in use",
                        "Memory in use (GiB)", "Description"]
    assert table[1] == ["globex", "noc@globex.test", "1", "0", "8", "32", ""]
    assert table[2][:6] == ["acme", "ops@acme.test", "4", "1", "6", "12"]
    assert len(table) == 34


def test_tenant_admin_sees_only_their_tenant(app, estate):
    client = app.test_client()
    log_in(client, "acme-admin", f.PASSWORD)
    assert [r[0] for r in rows(client, "/tenants/")] == ["acme"]
    assert "globex" not in client.get("/tenants/?format=csv").get_data(as_text=True)
    assert client.get(f"/tenants/{estate.globex.id}").status_code == 404
    assert client.get("/tenants/new").status_code == 403


def test_detail_page_query_count_does_not_grow(ops, estate):
    url = f"/tenants/{estate.acme.id}"
    ops.get(url)
    with count_queries() as few:
        ops.get(url)
    grp, srv, flavor = f.group(), f.server(cpu=512, memory=4096, storage=99999), f.flavor()
    acme = db.session.get(Tenant, estate.acme.id)
    for _ in range(25):
        g = f.group()
        f.quota(acme, g, memory_percent=10)
        f.vm(acme, srv, flavor)
        f.cluster(acme, grp)
    db.session.commit()
    with count_queries() as many:
        assert ops.get(url).status_code == 200
    assert many["n"] == few["n"]


def post(client, url, **data):
    token = csrf_token_from(client.get("/tenants/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_create_edit_delete_with_clear_refusals(ops, estate):
    assert "Give the tenant a name." in post(ops, "/tenants/new", name=" ").get_data(as_text=True)
    clash = post(ops, "/tenants/new", name="acme")
    assert clash.status_code == 422 and "A tenant named acme already exists." in clash.get_data(
        as_text=True)
    assert post(ops, "/tenants/new", name="hooli", contact="gavin@hooli.test").status_code == 302
    hooli = db.session.scalar(select(Tenant).where(Tenant.name == "hooli"))
    assert post(ops, f"/tenants/{hooli.id}/edit", name="hooli", contact="x@hooli.test",
                description="").status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "update"))
    assert event.changes == {"contact": {"from": "gavin@hooli.test", "to": "x@hooli.test"}}

    refused = post(ops, f"/tenants/{estate.acme.id}/delete")
    page = ops.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Tenant acme still has 5 VMs and 2 clusters" in page
    assert db.session.get(Tenant, estate.acme.id) is not None

    hooli_id = hooli.id
    assert post(ops, f"/tenants/{hooli_id}/delete").headers["Location"] == "/tenants/"
    assert db.session.get(Tenant, hooli_id) is None
    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "tenant").order_by(AuditEvent.id)).all()
    assert actions == ["create", "update", "delete"]
