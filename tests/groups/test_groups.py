"""Groups: the list, the detail page per role, headroom per flavor, and group CRUD."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, BaremetalGroup, BaremetalGroupTenantQuota
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.web.test_lists import count_queries

HX = {"HX-Request": "true"}


@pytest.fixture
def estate(app):
    grp = f.group(name="tw-north", dimension="geo:tw-north")
    rack = f.rack(name="r-01")
    # Free after the VMs below: s-a 10 CPU / 64 GiB / 100 GiB, s-b 64 / 16 / 1000.
    s_a = f.server(group=grp, rack=rack, name="s-a", cpu=26, memory=96, storage=164, rack_unit=3)
    s_b = f.server(group=grp, name="s-b", cpu=64, memory=16, storage=1000)
    f.server(group=grp, name="s-maint", cpu=64, memory=256, storage=2000, status="maintenance")
    acme, globex = f.tenant(name="acme"), f.tenant(name="globex")
    f.tenant(name="initech")
    f.quota(acme, grp, cpu_limit=40)
    f.quota(globex, grp, cpu_percent=10)
    big = f.flavor(name="big", cpu=16, memory=32, storage=64, is_active=False)
    f.vm(acme, s_a, big)
    small = f.flavor(name="s.4", cpu=4, memory=8, storage=20)
    diskless = f.flavor(name="d.2", cpu=2, memory=4, storage=0)
    other = f.group(name="tw-south")
    f.user("ops", operator=True)
    f.user("acme-admin", tenants=("acme",))
    f.maintainer(account="m1")
    f.user("watch", maintainer_account="m1")
    db.session.commit()
    return SimpleNamespace(**locals())


def client_for(app, username):
    client = app.test_client()
    log_in(client, username, f.PASSWORD)
    return client


def test_headroom_counts_single_vms_per_flavor_on_active_servers(app, estate):
    from portal.groups.service import headroom

    fits = {h.name: h.fits for h in headroom(estate.grp)}
    # s.4: s-a min(10/4, 64/8, 100/20) = 2; s-b min(16, 2, 50) = 2. Maintenance server: none.
    # d.2 has no disk: s-a min(5, 16) = 5; s-b min(32, 4) = 4. Retired flavors are not offered.
    assert fits == {"d.2": 9, "s.4": 4}
    assert {h.name: h.fits for h in headroom(estate.other)} == {"d.2": 0, "s.4": 0}


def test_headroom_is_explained_in_words(app, estate):
    """"Room for 4 more s.4" says which resource runs out first and how much of it is
    left, and when the free capacity is spread too thin to be used whole."""
    from portal.groups.service import headroom

    with app.test_request_context():
        said = {h.name: h.explain() for h in headroom(estate.grp)}
        assert said["s.4"] == (
            "Room for 4 more s.4: memory is the limit, 80 GiB left. The free capacity is "
            "spread over several servers: on one server it would hold 10.")
        assert said["d.2"].startswith("Room for 9 more d.2: memory is the limit, 80 GiB left.")
        assert {h.explain() for h in headroom(estate.other)} == {
            "No room: the group has no active server with free capacity."}
    html = client_for(app, "ops").get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "Room for 4 more s.4: memory is the limit, 80 GiB left." in html
    chinese = client_for(app, "ops").get(f"/groups/{estate.grp.id}",
                                         headers={"Accept-Language": "zh-TW"})
    assert "還能再容納 4 台 s.4：記憶體 是瓶頸，剩餘 80 GiB。" in chinese.get_data(as_text=True)


def test_a_tenant_admin_is_told_what_their_own_quota_leaves(app, estate):
    # acme: a 40-core limit, 16 cores used by its big VM: 24 left, room for 6 s.4.
    html = client_for(app, "acme-admin").get(f"/groups/{estate.grp.id}").get_data(
        as_text=True)
    assert "Room for 4 more s.4: memory is the limit, 80 GiB left." in html
    assert "Your quota allows 6 more: its CPU limit leaves 24 cores." in html
    assert "Your quota allows 12 more: its CPU limit leaves 24 cores." in html  # d.2
    operator = client_for(app, "ops").get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "Your quota" not in operator.split('id="headroom"')[1]


def test_operator_sees_servers_quotas_headroom_and_totals(app, estate):
    html = client_for(app, "ops").get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "s-a" in html and "s-maint" in html and "r-01 U3" in html
    assert ">acme<" in html and ">globex<" in html
    assert "Σ min" in html and "quotas aside" in html  # the headroom's definition, stated
    assert re.search(r"s\.4.*?<strong[^>]*>4</strong>", html, re.S)
    # Quota limits add up to 40 + floor(10 % of 154) = 55 cores.
    assert "55 cores" in html and "Quota limits add up to" in html
    assert 'class="quota-add"' in html and ">Edit</a>" in html
    assert re.search(r'<option value="\d+">initech</option>', html)


def test_server_names_link_to_their_pages_when_those_exist(app, estate):
    html = client_for(app, "ops").get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    if "baremetals.detail" in app.view_functions:
        assert f'<a href="/servers/{estate.s_a.id}">s-a</a>' in html
    else:
        assert "<td>s-a</td>" in html


def test_tenant_admin_sees_capacity_and_own_quota_only(app, estate):
    client = client_for(app, "acme-admin")
    html = client.get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "Capacity" in html and "allocated / total" in html and "16 / 154 cores" in html
    assert ">acme<" in html and "globex" not in html
    assert "s-a" not in html and 'id="servers"' not in html
    assert "Quota limits add up to" not in html
    assert ">Edit</a>" not in html and "Add a quota" not in html
    assert client.get(f"/groups/{estate.other.id}").status_code == 404
    assert client.get(f"/tenants/quotas/{estate.grp.id}/edit").status_code == 403


def test_maintainer_reads_but_does_not_edit(app, estate):
    client = client_for(app, "watch")
    html = client.get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "s-a" in html and ">globex<" in html
    assert ">Edit</a>" not in html and 'class="quota-add"' not in html
    assert client.get("/groups/new").status_code == 403


def test_group_detail_query_count_does_not_grow(app, estate):
    client = client_for(app, "ops")
    url = f"/groups/{estate.grp.id}"
    client.get(url)
    with count_queries() as few:
        client.get(url)
    db.session.refresh(estate.grp)
    db.session.refresh(estate.rack)
    flavor = f.flavor()
    for i in range(30):
        srv = f.server(group=estate.grp, rack=estate.rack, rack_unit=10 + i)
        tenant = f.tenant()
        f.quota(tenant, estate.grp, cpu_limit=i, memory_percent=5)
        f.vm(tenant, srv, flavor)
        f.flavor()
    db.session.commit()
    for quota in db.session.scalars(select(BaremetalGroupTenantQuota)).all()[:5]:
        from portal.audit.service import record

        record("update", "quota", quota.id, "x", {"cpu_limit": {"from": 1, "to": 2}})
    db.session.commit()
    with count_queries() as many:
        assert client.get(url).status_code == 200
    assert many["n"] == few["n"]


def test_list_search_sort_paging_csv_and_fragment(app, estate):
    for i in range(30):
        grp = f.group(name=f"pool-{i:02d}", dimension="load:low" if i % 2 else "load:high")
        f.server(group=grp, cpu=10 + i)
    db.session.commit()
    client = client_for(app, "ops")

    def names(url):
        html = client.get(url, headers=HX).get_data(as_text=True)
        assert "<html" not in html
        return re.findall(r'<a href="/groups/\d+">([^<]+)</a>', html)

    assert names("/groups/?q=load:low&per_page=50")[:2] == ["pool-01", "pool-03"]
    assert names("/groups/?q=LOAD:LOW&per_page=50") == names("/groups/?q=load:low&per_page=50")
    assert names("/groups/?dimension=geo:tw-north") == ["tw-north"]
    assert len(names("/groups/?dimension=load:high&per_page=50")) == 15
    assert names("/groups/?sort=-allocated_cpu")[0] == "tw-north"
    assert names("/groups/?sort=-available_cpu")[:2] == ["tw-north", "pool-29"]
    page2 = names("/groups/?per_page=25&page=2")
    assert len(page2) == 7 and page2[-1] == "tw-south"
    rows = list(csv.reader(io.StringIO(
        client.get("/groups/?q=pool-0&sort=-name&format=csv").get_data(as_text=True))))
    assert rows[0][:5] == ["Name", "Dimension", "CPU", "Allocated CPU", "Free CPU"]
    assert [r[0] for r in rows[1:]] == [f"pool-{i:02d}" for i in range(9, -1, -1)]
    assert rows[1][2:5] == ["19", "0", "19"]


def post(client, url, **data):
    token = csrf_token_from(client.get("/groups/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_create_edit_and_delete_a_group(app, estate):
    client = client_for(app, "ops")
    assert post(client, "/groups/new", name="", dimension="x").status_code == 422
    clash = post(client, "/groups/new", name="tw-north")
    assert clash.status_code == 422 and "A group named tw-north already exists." in clash.get_data(
        as_text=True)
    created = post(client, "/groups/new", name="tw-east", dimension="geo:tw-east")
    assert created.status_code == 302
    grp = db.session.scalar(select(BaremetalGroup).where(BaremetalGroup.name == "tw-east"))
    assert post(client, f"/groups/{grp.id}/edit", name="tw-east", dimension="geo:east",
                description="").status_code == 302
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "baremetal_group", AuditEvent.object_id == grp.id
    ).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].changes == {"dimension": {"from": "geo:tw-east", "to": "geo:east"}}
    page = client.get(f"/groups/{grp.id}").get_data(as_text=True)
    assert "Dimension geo:tw-east → geo:east, by user ops" in page
    gid = grp.id
    assert post(client, f"/groups/{gid}/delete").status_code == 302
    assert db.session.get(BaremetalGroup, gid) is None


def test_a_group_with_servers_cannot_be_deleted(app, estate):
    client = client_for(app, "ops")
    response = post(client, f"/groups/{estate.grp.id}/delete")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Group tw-north still has 3 servers (s-a, s-b, s-maint)" in page
    assert db.session.get(BaremetalGroup, estate.grp.id) is not None


def test_deleting_a_group_takes_its_quotas(app, estate):
    client = client_for(app, "ops")
    f.quota(estate.acme, estate.other, cpu_limit=1)
    db.session.commit()
    gid = estate.other.id
    assert post(client, f"/groups/{gid}/delete").status_code == 302
    assert db.session.scalars(select(BaremetalGroupTenantQuota).where(
        BaremetalGroupTenantQuota.group_id == gid)).all() == []
