"""Server pages: list, detail, create/edit with rack positions, status changes, moves
between groups and deletes — every write keeps the capacity counters exact and leaves an
audit event."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals import service
from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    Baremetal,
    BaremetalGroup,
    MaintainerToMaintainerGroup,
    ResourceMaintainer,
    VirtualMachine,
)
from tests import factories as f
from tests.baremetals.pages import client_for, count_queries, events, first_cells, post, text


@pytest.fixture
def estate(app):
    rack = f.rack(name="tpe1-r01", region="tw-north", dc="tpe1", height_u=42)
    other_rack = f.rack(name="khh1-r01", region="tw-south", dc="khh1")
    north, south = f.group(name="north"), f.group(name="south")
    busy = f.server(rack=rack, group=north, name="busy-01", rack_unit=10, size_u=2, cpu=64,
                    memory=256, storage=2000, region="tw-north", dc="tpe1")
    idle = f.server(rack=rack, group=north, name="idle-01", rack_unit=1, cpu=32, memory=128,
                    storage=1000, region="tw-north", dc="tpe1")
    spare = f.server(rack=other_rack, group=south, name="spare-01", rack_unit=5, cpu=16,
                     memory=64, storage=500, region="tw-south", dc="khh1", status="maintenance")
    loose = f.server(name="loose-01", cpu=8, memory=32, storage=100)
    acme = f.tenant(name="acme")
    flavor = f.flavor(cpu=8, memory=32, storage=100)
    k8s = f.cluster(acme, north, name="shop-k8s")
    vm_a = f.vm(acme, busy, flavor, name="shop-cp-1", cluster=k8s, role="control-plane")
    vm_b = f.vm(acme, busy, flavor, name="api-1")
    old = f.vm(acme, idle, flavor, name="old-1", status="deleted")
    failed = f.vm(acme, idle, flavor, name="failed-1", status="error")
    db.session.commit()
    return SimpleNamespace(**locals())


def server_form(**overrides):
    data = {"name": "new-01", "serial": "SN-NEW-01", "status": "active", "rack_id": "",
            "rack_unit": "", "size_u": "1", "region": "", "dc": "", "group_id": "",
            "total_cpu": "48", "total_memory": "192", "total_storage": "960"}
    data.update({k: "" if v is None else str(v) for k, v in overrides.items()})
    return data


def edit_form(server: Baremetal, **overrides):
    data = server_form(name=server.name, serial=server.serial, status=server.status,
                       rack_id=server.rack_id or "", rack_unit=server.rack_unit or "",
                       size_u=server.size_u, region=server.region, dc=server.dc,
                       total_cpu=server.total_cpu, total_memory=server.total_memory,
                       total_storage=server.total_storage)
    data.pop("group_id")
    data.update({k: "" if v is None else str(v) for k, v in overrides.items()})
    return data


def reload(server: Baremetal) -> Baremetal:
    return db.session.get(Baremetal, server.id)


def group_counters(group: BaremetalGroup) -> tuple[int, ...]:
    g = db.session.get(BaremetalGroup, group.id)
    return (g.total_cpu, g.available_cpu, g.total_memory, g.available_memory,
            g.total_storage, g.available_storage)


# ---- List -------------------------------------------------------------------------------


def names(client, url):
    return first_cells(text(client.get(url, headers={"HX-Request": "true"})))


def test_list_filters_sorts_pages_and_searches(ops, estate):
    html = text(ops.get("/servers/"))
    assert f'href="/servers/{estate.busy.id}">busy-01</a>' in html
    assert "New server" in html and "Import CSV" in html
    assert names(ops, "/servers/?status=maintenance") == ["spare-01"]
    assert names(ops, "/servers/?region=tw-north") == ["busy-01", "idle-01"]
    assert names(ops, "/servers/?dc=khh1") == ["spare-01"]
    assert names(ops, f"/servers/?rack={estate.rack.id}") == ["busy-01", "idle-01"]
    assert names(ops, f"/servers/?group={estate.south.id}") == ["spare-01"]
    assert names(ops, "/servers/?q=SN-") == ["busy-01", "idle-01", "loose-01", "spare-01"]
    assert names(ops, "/servers/?q=IDLE") == ["idle-01"]
    # Free CPU: busy 48, idle 32, spare 16, loose 8.
    assert names(ops, "/servers/?sort=-available_cpu") == [
        "busy-01", "idle-01", "spare-01", "loose-01"]
    assert names(ops, "/servers/?sort=available_memory")[0] == "loose-01"
    for i in range(30):
        f.server(name=f"zz-{i:02d}")
    db.session.commit()
    page2 = names(ops, "/servers/?per_page=25&page=2")
    assert len(page2) == 9 and page2[-1] == "zz-29"


def test_htmx_list_request_gets_the_table_only(ops, estate):
    html = text(ops.get("/servers/?status=active", headers={"HX-Request": "true"}))
    assert "<html" not in html and html.lstrip().startswith('<div id="list-table"')
    assert "busy-01" in html and "spare-01" not in html


def test_csv_export_is_the_filtered_view(ops, estate):
    response = ops.get(f"/servers/?group={estate.north.id}&sort=-name&format=csv")
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0][:3] == ["Name", "Serial", "Status"]
    header = rows[0]
    busy = dict(zip(header, rows[2], strict=True))
    assert [r[0] for r in rows[1:]] == ["idle-01", "busy-01"]
    assert busy["Rack"] == "tpe1-r01" and busy["Unit"] == "10" and busy["Size (U)"] == "2"
    assert busy["Group"] == "north" and busy["Free CPU"] == "48" and busy["CPU"] == "64"


# ---- Detail -----------------------------------------------------------------------------


def test_detail_shows_capacity_vms_clusters_and_actions(ops, estate):
    html = text(ops.get(f"/servers/{estate.busy.id}"))
    assert "16 / 64 cores" in html and "64 / 256 GiB" in html
    vms = html.split('id="server-vms"')[1].split('id="server-clusters"')[0]
    assert f'href="/vms/{estate.vm_a.id}">shop-cp-1' in vms and ">api-1<" in vms
    assert f'href="/tenants/{estate.acme.id}">acme' in vms
    clusters = html.split('id="server-clusters"')[1]
    assert f'href="/clusters/{estate.k8s.id}">shop-k8s' in clusters
    assert f'href="/racks/{estate.rack.id}">tpe1-r01' in html and "U10–U11" in html
    assert 'id="status-form"' in html and 'id="move-form"' in html
    assert "history-panel" in html
    idle = text(ops.get(f"/servers/{estate.idle.id}"))
    assert ">failed-1<" in idle and ">old-1<" not in idle  # deleted VMs are history only


def test_detail_query_count_does_not_grow_with_vms(app, ops, estate):
    url = f"/servers/{estate.busy.id}"
    ops.get(url)
    with count_queries() as few:
        assert ops.get(url).status_code == 200
    big = f.flavor(cpu=1, memory=1, storage=1)
    busy = reload(estate.busy)
    db.session.refresh(busy.group)
    for i in range(30):
        tenant = f.tenant()
        k8s = f.cluster(tenant, estate.north) if i % 2 else None
        f.vm(tenant, busy, big, cluster=k8s)
    db.session.commit()
    with count_queries() as many:
        html = text(ops.get(url))
    assert html.split('id="server-vms"')[1].count('href="/vms/') == 32
    assert many["n"] == few["n"]


# ---- Create and edit --------------------------------------------------------------------


def test_create_in_a_rack_and_group_takes_location_and_adds_capacity(ops, estate):
    before = group_counters(estate.north)
    response = post(ops, "/servers/new", server_form(
        name="台北-gpu-01", rack_id=estate.rack.id, rack_unit=20, size_u=2,
        group_id=estate.north.id))
    server = db.session.scalar(select(Baremetal).where(Baremetal.name == "台北-gpu-01"))
    assert response.status_code == 302 and response.headers["Location"] == f"/servers/{server.id}"
    assert (server.region, server.dc, server.rack_unit, server.top_unit) == (
        "tw-north", "tpe1", 20, 21)
    assert server.available_cpu == 48
    after = group_counters(estate.north)
    assert [a - b for a, b in zip(after, before, strict=True)] == [48, 48, 192, 192, 960, 960]
    assert counter_drift() == []
    (event,) = events("baremetal", server.id)
    assert event.action == "create" and event.username == "ops"
    assert event.changes["rack_unit"] == {"from": None, "to": 20}


@pytest.mark.parametrize("overrides, field_message", [
    ({"rack_unit": 11}, "Unit 11 of rack tpe1-r01 is taken by busy-01 (U10–U11)."),
    ({"rack_unit": 41, "size_u": 3}, "Units 41–43 do not fit in rack tpe1-r01"),
    ({"rack_unit": ""}, "Choose the unit of rack tpe1-r01"),
    ({"dc": "tpe9"}, "Rack tpe1-r01 is in DC tpe1; leave DC empty"),
    ({"name": "busy-01"}, "Server busy-01 already has this name."),
    ({"serial": "has space"}, "A serial has at most 64 characters and no spaces."),
    ({"total_cpu": -1}, "Zero or more."),
    ({"name": "bad name"}, "no spaces"),
])
def test_create_refusals_are_shown_on_the_form(ops, estate, overrides, field_message):
    data = server_form(rack_id=estate.rack.id, rack_unit=30)
    data.update({k: str(v) for k, v in overrides.items()})
    response = post(ops, "/servers/new", data)
    assert response.status_code == 422
    assert field_message in text(response)
    assert 'class="invalid-feedback d-block"' in text(response)
    assert db.session.scalar(select(func.count(Baremetal.id))) == 4


def test_edit_totals_keeps_available_exact_and_refuses_going_below_used(ops, estate):
    busy = estate.busy
    response = post(ops, f"/servers/{busy.id}/edit", edit_form(busy, total_cpu=96))
    assert response.status_code == 302
    busy = reload(busy)
    assert (busy.total_cpu, busy.available_cpu) == (96, 80)
    assert group_counters(estate.north)[:2] == (128, 112)
    assert counter_drift() == []
    assert events("baremetal", busy.id)[-1].changes == {"total_cpu": {"from": 64, "to": 96}}

    response = post(ops, f"/servers/{busy.id}/edit", edit_form(busy, total_memory=40))
    assert response.status_code == 422
    assert ("Server busy-01 has 64 GiB memory allocated to its VMs: the total cannot go below "
            "64.") in text(response)
    assert reload(busy).total_memory == 256 and counter_drift() == []


def test_edit_moves_a_server_in_its_rack_and_out_of_it(ops, estate):
    idle = estate.idle
    assert post(ops, f"/servers/{idle.id}/edit", edit_form(idle, rack_unit=11)).status_code == 422
    response = post(ops, f"/servers/{idle.id}/edit", edit_form(idle, rack_unit=2, size_u=2))
    assert response.status_code == 302 and reload(idle).top_unit == 3
    response = post(ops, f"/servers/{idle.id}/edit", edit_form(idle, rack_id="", rack_unit=""))
    assert response.status_code == 302
    idle = reload(idle)
    assert (idle.rack_id, idle.rack_unit, idle.rack_height_u) == (None, None, None)
    assert events("baremetal", idle.id)[-1].changes["rack_id"] == {
        "from": estate.rack.id, "to": None}


# ---- Status -----------------------------------------------------------------------------


def test_status_maintenance_is_allowed_with_vms_offline_is_refused_naming_them(ops, estate):
    busy = estate.busy
    response = post(ops, f"/servers/{busy.id}/status", {"status": "maintenance"})
    assert response.status_code == 302 and reload(busy).status == "maintenance"
    assert events("baremetal", busy.id)[-1].action == "status"
    response = post(ops, f"/servers/{busy.id}/status", {"status": "offline"})
    assert response.status_code == 422
    assert ("Server busy-01 cannot go offline while 2 VMs hold resources on it: api-1, "
            "shop-cp-1.") in text(response)
    assert reload(busy).status == "maintenance"
    # A server with only failed and deleted VMs may be decommissioned.
    idle = estate.idle
    response = post(ops, f"/servers/{idle.id}/status", {"status": "decommissioned"})
    assert response.status_code == 302 and reload(idle).status == "decommissioned"


def test_a_long_refusal_names_ten_vms_and_counts_the_rest(app, estate):
    flavor = f.flavor(cpu=1, memory=1, storage=1)
    spare = reload(estate.spare)
    db.session.refresh(spare.group)
    for i in range(12):
        f.vm(estate.acme, spare, flavor, name=f"vm-{i:02d}")
    db.session.commit()
    with pytest.raises(service.ServerInvalid) as refused:
        service.change_status(spare, "decommissioned")
    assert refused.value.errors["status"].endswith("vm-09 and 2 more.")
    assert "while 12 VMs hold resources" in refused.value.errors["status"]


def test_maintainers_change_status_only_of_servers_assigned_to_them(app, estate):
    person, other = f.maintainer(account="oncall"), f.maintainer(account="other")
    team = f.maintainer_group(name="dc-ops")
    db.session.add(MaintainerToMaintainerGroup(maintainer_id=person.id, group_id=team.id))
    db.session.add(ResourceMaintainer(resource_type="baremetal", resource_id=estate.busy.id,
                                      maintainer_id=person.id))
    db.session.add(ResourceMaintainer(resource_type="baremetal", resource_id=estate.idle.id,
                                      maintainer_group_id=team.id))
    db.session.add(ResourceMaintainer(resource_type="baremetal", resource_id=estate.spare.id,
                                      maintainer_id=other.id))
    db.session.commit()
    client = client_for(app, "m", maintainer_account="oncall")
    for server in (estate.busy, estate.idle):
        page = text(client.get(f"/servers/{server.id}"))
        assert 'id="status-form"' in page and 'id="move-form"' not in page
        response = post(client, f"/servers/{server.id}/status", {"status": "maintenance"})
        assert response.status_code == 302 and reload(server).status == "maintenance"
    assert 'id="status-form"' not in text(client.get(f"/servers/{estate.spare.id}"))
    response = post(client, f"/servers/{estate.spare.id}/status", {"status": "active"})
    assert response.status_code == 403 and reload(estate.spare).status == "maintenance"
    assert post(client, f"/servers/{estate.idle.id}/move", {"group_id": ""}).status_code == 403
    assert client.get(f"/servers/{estate.idle.id}/edit").status_code == 403
    assert client.get("/servers/import").status_code == 403


# ---- Move -------------------------------------------------------------------------------


def test_moving_a_server_with_vms_is_refused_naming_them(ops, estate):
    before = group_counters(estate.north)
    response = post(ops, f"/servers/{estate.busy.id}/move", {"group_id": estate.south.id})
    assert response.status_code == 422
    assert ("Server busy-01 cannot change group while 2 VMs hold resources on it: api-1, "
            "shop-cp-1.") in text(response)
    assert reload(estate.busy).group_id == estate.north.id
    assert group_counters(estate.north) == before and counter_drift() == []


def test_moving_a_server_moves_its_counters(ops, estate):
    north, south = group_counters(estate.north), group_counters(estate.south)
    response = post(ops, f"/servers/{estate.idle.id}/move", {"group_id": estate.south.id})
    assert response.status_code == 302
    assert reload(estate.idle).group_id == estate.south.id
    moved = (32, 32, 128, 128, 1000, 1000)
    assert group_counters(estate.north) == tuple(a - m for a, m in zip(north, moved, strict=True))
    assert group_counters(estate.south) == tuple(a + m for a, m in zip(south, moved, strict=True))
    assert counter_drift() == []
    event = events("baremetal", estate.idle.id)[-1]
    assert event.action == "move"
    assert event.changes == {"group_id": {"from": estate.north.id, "to": estate.south.id}}
    # Out of any group, and into one from none.
    assert post(ops, f"/servers/{estate.idle.id}/move", {"group_id": ""}).status_code == 302
    assert post(ops, f"/servers/{estate.loose.id}/move",
                {"group_id": estate.north.id}).status_code == 302
    assert group_counters(estate.south) == south
    assert counter_drift() == []


# ---- Delete -----------------------------------------------------------------------------


def test_deleting_a_server_with_vms_is_refused_naming_them(ops, estate):
    assert "Delete busy-01" in text(ops.get(f"/servers/{estate.busy.id}/delete"))
    response = post(ops, f"/servers/{estate.busy.id}/delete")
    assert response.status_code == 409
    assert ("Server busy-01 cannot be deleted while 2 VMs hold resources on it: api-1, "
            "shop-cp-1.") in text(response)
    assert reload(estate.busy) is not None and counter_drift() == []


def test_deleting_a_server_subtracts_it_and_keeps_history(ops, estate):
    person = f.maintainer()
    db.session.add(ResourceMaintainer(resource_type="baremetal", resource_id=estate.idle.id,
                                      maintainer_id=person.id))
    db.session.commit()
    idle_id, before = estate.idle.id, group_counters(estate.north)
    response = post(ops, f"/servers/{idle_id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/servers/"
    assert db.session.scalar(select(Baremetal.id).where(Baremetal.id == idle_id)) is None
    assert group_counters(estate.north) == (before[0] - 32, before[1] - 32, before[2] - 128,
                                            before[3] - 128, before[4] - 1000, before[5] - 1000)
    assert counter_drift() == []
    kept = db.session.scalars(
        select(VirtualMachine.baremetal_id).where(VirtualMachine.name.in_(["old-1", "failed-1"]))
    ).all()
    assert kept == [None, None]
    assert db.session.scalar(select(func.count(ResourceMaintainer.id))) == 0
    assert events("baremetal", idle_id)[-1].action == "delete"


# ---- Both databases ---------------------------------------------------------------------


def test_counters_stay_exact_through_every_write(any_app):
    rack, north, south = f.rack(name="r1"), f.group(name="n"), f.group(name="s")
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=16, storage=50)
    db.session.commit()
    server = service.create_server(service.ServerFields(
        name="s1", serial="S1", rack_id=rack.id, rack_unit=3, size_u=2, group_id=north.id,
        total_cpu=32, total_memory=128, total_storage=500))
    db.session.refresh(server.group)
    f.vm(tenant, server, flavor)
    db.session.commit()
    data = service.ServerFields.of(server)
    data.total_cpu, data.total_storage = 40, 60
    service.update_server(server, data)
    assert (server.total_cpu, server.available_cpu) == (40, 36)
    assert counter_drift() == []
    with pytest.raises(service.ServerInvalid) as refused:
        data = service.ServerFields.of(server)
        data.total_storage = 49
        service.update_server(server, data)
    assert "total_storage" in refused.value.errors
    db.session.rollback()
    other = service.create_server(service.ServerFields(
        name="s2", serial="S2", total_cpu=8, total_memory=8, total_storage=8, group_id=south.id))
    service.move_server(other, north.id)
    service.change_status(other, "offline")
    service.delete_server(other)
    assert counter_drift() == []
    assert group_counters(north) == (40, 36, 128, 112, 60, 10)
    assert group_counters(south) == (0, 0, 0, 0, 0, 0)


def test_forms_render_with_their_choices_and_prefill(ops, estate):
    page = text(ops.get(f"/servers/new?rack_id={estate.rack.id}&unit=7"))
    assert f'<option selected value="{estate.rack.id}">tpe1-r01 (tpe1)</option>' in page
    assert 'name="rack_unit" type="number" value="7"' in page
    assert ">north</option>" in page
    page = text(ops.get(f"/servers/{estate.busy.id}/edit"))
    assert 'value="busy-01"' in page and 'name="group_id"' not in page
    assert "In use by VMs now: 16 cores" in page
