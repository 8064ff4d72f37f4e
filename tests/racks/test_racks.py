"""Rack pages: the list with usage columns, the elevation and blast radius, and the
create / edit / delete rules with their audit trail."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import Baremetal, Rack, ResourceMaintainer
from tests import factories as f
from tests.baremetals.pages import client_for, count_queries, events, first_cells, post, text


@pytest.fixture
def estate(app):
    """Rack a: 3 servers (one 2U); rack b: one server; rack c: empty."""
    a = f.rack(name="tpe1-r01", region="tw-north", dc="tpe1", bgp_asn=65101,
               network_notes="ToR: tpe1-r01-tor1/tor2\nVLANs: 110 mgmt, 210 tenant")
    b = f.rack(name="tpe1-r02", region="tw-north", dc="tpe1", bgp_asn=65102)
    c = f.rack(name="khh1-r01", region="tw-south", dc="khh1", height_u=20)
    grp = f.group(name="north")
    db1 = f.server(rack=a, group=grp, name="db-01", rack_unit=10, size_u=2, cpu=64, memory=256,
                   region="tw-north", dc="tpe1")
    web1 = f.server(rack=a, group=grp, name="web-01", rack_unit=1, cpu=32, memory=128,
                    region="tw-north", dc="tpe1", status="maintenance")
    web2 = f.server(rack=a, group=grp, name="web-02", rack_unit=42, cpu=32, memory=128,
                    region="tw-north", dc="tpe1")
    lone = f.server(rack=b, group=grp, name="lone-01", rack_unit=5, cpu=16, memory=64)
    acme, globex = f.tenant(name="acme"), f.tenant(name="globex")
    flavor = f.flavor(cpu=8, memory=32, storage=100)
    k8s = f.cluster(acme, grp, name="shop-k8s")
    vms = [
        f.vm(acme, db1, flavor, name="acme-db"),
        f.vm(acme, web2, flavor, name="shop-cp-1", cluster=k8s, role="control-plane"),
        f.vm(acme, lone, flavor, name="shop-cp-2", cluster=k8s, role="control-plane"),
        f.vm(globex, db1, flavor, name="globex-api"),
        f.vm(globex, db1, flavor, name="gone-vm", status="deleted"),
    ]
    db.session.commit()
    return SimpleNamespace(**locals())


def rows_of(client, url):
    return first_cells(text(client.get(url, headers={"HX-Request": "true"})))


def test_list_shows_usage_and_filters_sorts_pages_and_searches(ops, estate):
    html = text(ops.get("/racks/"))
    assert f'href="/racks/{estate.a.id}"' in html and "New rack" in html
    # Units used: 4 of 42 U in rack a; CPU allocated 24 of 128 cores.
    assert "4 / 42 U" in html and "24 / 128 cores" in html
    assert rows_of(ops, "/racks/?region=tw-south") == ["khh1-r01"]
    assert rows_of(ops, "/racks/?dc=tpe1&sort=-name") == ["tpe1-r02", "tpe1-r01"]
    assert rows_of(ops, "/racks/?q=R02") == ["tpe1-r02"]
    assert rows_of(ops, "/racks/?sort=-units_used") == ["tpe1-r01", "tpe1-r02", "khh1-r01"]
    # lone-01 has 8 of 16 cores allocated (50%), rack a 24 of 128 (19%), rack c nothing.
    assert rows_of(ops, "/racks/?sort=-cpu_allocated") == ["tpe1-r02", "tpe1-r01", "khh1-r01"]
    assert rows_of(ops, "/racks/?sort=memory_allocated")[0] == "khh1-r01"
    for i in range(30):
        f.rack(name=f"zz-{i:02d}")
    db.session.commit()
    page2 = rows_of(ops, "/racks/?per_page=25&page=2")
    assert len(page2) == 8 and page2[-1] == "zz-29"


def test_htmx_list_request_gets_the_table_only(ops, estate):
    response = ops.get("/racks/?dc=tpe1", headers={"HX-Request": "true"})
    html = text(response)
    assert "<html" not in html and html.lstrip().startswith('<div id="list-table"')
    assert "tpe1-r01" in html and "khh1-r01" not in html


def test_csv_export_has_usage_columns(ops, estate):
    response = ops.get("/racks/?dc=tpe1&format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0] == ["Name", "Region", "DC", "Location", "ASN", "Height (U)", "Servers",
                       "Units used", "CPU allocated", "Memory allocated"]
    by_name = {r[0]: r for r in rows[1:]}
    assert set(by_name) == {"tpe1-r01", "tpe1-r02"}
    assert by_name["tpe1-r01"][4:] == ["65101", "42", "3", "9.5", "18.8", "18.8"]
    assert by_name["tpe1-r02"][6:] == ["1", "2.4", "50.0", "50.0"]


def test_list_query_count_does_not_grow_with_racks(app, ops):
    tenant, flavor = f.tenant(), f.flavor()

    def add_racks(count):
        grp = f.group()
        for _ in range(count):
            rack = f.rack()
            for unit in (1, 3):
                f.vm(tenant, f.server(rack=rack, group=grp, rack_unit=unit), flavor)
        db.session.commit()

    add_racks(2)
    ops.get("/racks/")
    with count_queries() as few:
        assert ops.get("/racks/").status_code == 200
    add_racks(40)
    with count_queries() as many:
        assert ops.get("/racks/?per_page=100").status_code == 200
    assert many["n"] == few["n"]
    with count_queries() as export:
        ops.get("/racks/?format=csv")
    assert export["n"] <= few["n"]


def test_elevation_draws_every_unit_top_down_with_servers_over_their_units(ops, estate):
    html = text(ops.get(f"/racks/{estate.a.id}"))
    units = [int(u) for u in re.findall(r'<tr class="elev-row" data-unit="(\d+)"', html)]
    assert units == list(range(42, 0, -1))
    # db-01 occupies U10–U11: drawn once from its top unit, spanning two rows.
    cell = re.search(r'<td rowspan="(\d+)" class="elev-server elev-(\w+)" data-server="db-01"',
                     html)
    assert cell.groups() == ("2", "active")
    assert 'data-server="web-01" data-status="maintenance"' in html
    row_11 = html.split('data-unit="11"')[1].split("</tr>")[0]
    row_10 = html.split('data-unit="10"')[1].split("</tr>")[0]
    assert "db-01" in row_11 and "<td" not in row_10  # covered by the rowspan
    assert html.count('class="elev-empty"') == 42 - 4
    assert "16 / 64 cores" in html  # db-01's CPU use: two VMs of 8 (the deleted one is gone)
    assert 'href="/servers/new?rack_id=' in html  # an operator may add into empty units
    # Totals and network notes.
    assert "4 / 42 U" in html and "ToR: tpe1-r01-tor1/tor2\nVLANs" in html


def test_blast_radius_names_tenants_clusters_and_vms(ops, estate):
    html = text(ops.get(f"/racks/{estate.a.id}"))
    blast = html.split('id="blast-radius"')[1].split("history-panel")[0]
    assert "2 tenants, 3 VMs, 1 cluster" in blast
    assert f'href="/tenants/{estate.acme.id}">acme' in blast
    assert f'href="/tenants/{estate.globex.id}">globex' in blast
    assert f'href="/clusters/{estate.k8s.id}">shop-k8s' in blast
    for name in ("acme-db", "shop-cp-1", "globex-api"):
        assert f">{name}</a>" in blast
    assert "gone-vm" not in blast and "shop-cp-2" not in blast  # deleted; other rack
    empty = text(ops.get(f"/racks/{estate.c.id}"))
    assert "0 tenants, 0 VMs, 0 clusters" in empty and "No VM runs in this rack." in empty


def test_rack_page_query_count_does_not_grow_with_servers_and_vms(app, ops):
    rack, grp, flavor = f.rack(), f.group(), f.flavor(cpu=1, memory=1, storage=1)
    tenants = [f.tenant() for _ in range(3)]

    def fill(first_unit, count):
        db.session.refresh(grp)  # loaded before the factories change it (no autoflush)
        for unit in range(first_unit, first_unit + count):
            server = f.server(rack=rack, group=grp, rack_unit=unit)
            for i, tenant in enumerate(tenants):
                k8s = f.cluster(tenant, grp)
                f.vm(tenant, server, flavor, cluster=k8s if i else None)
        db.session.commit()

    fill(1, 2)
    ops.get(f"/racks/{rack.id}")
    with count_queries() as few:
        assert ops.get(f"/racks/{rack.id}").status_code == 200
    fill(10, 30)
    with count_queries() as many:
        html = text(ops.get(f"/racks/{rack.id}"))
    assert html.count("elev-server elev-active") == 32
    assert many["n"] == few["n"]


def test_create_edit_and_delete_are_audited(ops, estate):
    data = {"name": "tpe1-r09", "region": "tw-north", "dc": "tpe1", "location": "Hall B",
            "height_u": "48", "bgp_asn": "65109", "network_notes": "peers: spine1"}
    response = post(ops, "/racks/new", data)
    rack = db.session.scalar(select(Rack).where(Rack.name == "tpe1-r09"))
    assert response.status_code == 302 and response.headers["Location"] == f"/racks/{rack.id}"
    (created,) = events("rack", rack.id)
    assert created.action == "create" and created.username == "ops"
    assert created.changes["height_u"] == {"from": None, "to": 48}

    response = post(ops, f"/racks/{rack.id}/edit", {**data, "height_u": "42", "bgp_asn": ""})
    assert response.status_code == 302
    updated = events("rack", rack.id)[-1]
    assert updated.action == "update"
    assert updated.changes == {"height_u": {"from": 48, "to": 42},
                               "bgp_asn": {"from": 65109, "to": None}}
    page = text(ops.get(f"/racks/{rack.id}"))
    assert "history-panel" in page and "48 → 42" in page

    rack_id = rack.id
    response = post(ops, f"/racks/{rack_id}/delete")
    assert response.status_code == 302
    assert db.session.scalar(select(Rack.id).where(Rack.id == rack_id)) is None
    assert events("rack", rack_id)[-1].action == "delete"


def test_form_errors_land_on_fields(ops, estate):
    response = post(ops, "/racks/new", {"name": "tpe1-r01", "region": "x", "dc": "y",
                                        "height_u": "61", "bgp_asn": "0"})
    html = text(response)
    assert response.status_code == 422
    assert "A rack is 1 to 60 U high." in html and "An ASN is between 1 and" in html
    response = post(ops, "/racks/new", {"name": "tpe1-r01", "region": "x", "dc": "y",
                                        "height_u": "42"})
    assert "Rack tpe1-r01 already exists." in text(response)
    assert db.session.scalar(select(func.count(Rack.id))) == 3


def test_shrinking_a_rack_under_its_servers_is_refused_with_their_names(ops, estate):
    a = estate.a
    data = {"name": a.name, "region": a.region, "dc": a.dc, "height_u": "10"}
    html = text(post(ops, f"/racks/{a.id}/edit", data))
    assert "these servers would stick out of the rack: web-02 (U42), db-01 (U10–U11)" in html
    html = text(post(ops, f"/racks/{a.id}/edit", {**data, "height_u": "41"}))
    assert "would stick out of the rack: web-02 (U42). Move them down first." in html
    assert db.session.get(Rack, a.id).height_u == 42


def test_moving_a_rack_to_another_dc_takes_its_servers_along(ops, estate):
    b = estate.b
    response = post(ops, f"/racks/{b.id}/edit",
                    {"name": b.name, "region": "tw-south", "dc": "khh1", "height_u": "42"})
    assert response.status_code == 302
    lone = db.session.get(Baremetal, estate.lone.id)
    assert (lone.region, lone.dc) == ("tw-south", "khh1")


def test_deleting_a_rack_with_servers_is_refused_naming_them(ops, estate):
    confirm = text(ops.get(f"/racks/{estate.a.id}/delete"))
    assert "Delete tpe1-r01" in confirm
    response = post(ops, f"/racks/{estate.a.id}/delete")
    assert response.status_code == 409
    assert ("Rack tpe1-r01 still holds 3 servers: web-02, db-01, web-01. Move or delete them "
            "first.") in text(response)
    assert db.session.get(Rack, estate.a.id) is not None
    assert counter_drift() == []


def test_deleting_an_empty_rack_removes_its_assignments(ops, estate):
    person = f.maintainer()
    db.session.add(ResourceMaintainer(resource_type="rack", resource_id=estate.c.id,
                                      maintainer_id=person.id))
    db.session.commit()
    assert post(ops, f"/racks/{estate.c.id}/delete").status_code == 302
    assert db.session.scalar(select(func.count(ResourceMaintainer.id))) == 0


def test_maintainers_read_racks_but_do_not_change_them(app, estate):
    f.maintainer(account="oncall")
    db.session.commit()
    client = client_for(app, "m", maintainer_account="oncall")
    page = text(client.get(f"/racks/{estate.a.id}"))
    assert "db-01" in page and "New rack" not in page and "/edit" not in page
    assert "add at U" not in page
    assert client.get("/racks/new").status_code == 403
    assert post(client, f"/racks/{estate.a.id}/delete").status_code == 403
    assert client.get("/racks/999999").status_code == 404


def test_rack_forms_render(ops, estate):
    assert 'name="height_u" required type="number" value="42"' in text(ops.get("/racks/new"))
    page = text(ops.get(f"/racks/{estate.a.id}/edit"))
    assert 'value="tpe1-r01"' in page and "ToR: tpe1-r01-tor1/tor2" in page
