"""Bulk actions on the server, rack and VM lists: per role, per row, CSRF, no JavaScript."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    Baremetal,
    ResourceMaintainer,
    VirtualMachine,
)
from tests import factories as f
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def estate(app):
    return build_estate()


def build_estate():
    grp = f.group(name="g1")
    rack_a, rack_b = f.rack(name="rack-a"), f.rack(name="rack-b")
    servers = [f.server(group=grp, rack=rack_a, rack_unit=u * 2 + 1, name=f"srv-a{u}")
               for u in range(3)]
    servers += [f.server(group=grp, rack=rack_b, rack_unit=1, name="srv-b0")]
    mine, theirs = f.tenant(name="mine"), f.tenant(name="theirs")
    f.quota(mine, grp)
    f.quota(theirs, grp)
    flavor = f.flavor()
    my_vms = [f.vm(mine, servers[0], flavor, name=f"my-vm-{i}") for i in range(3)]
    their_vm = f.vm(theirs, servers[1], flavor, name="their-vm")
    cluster = f.cluster(mine, grp, name="my-cluster")
    node = f.vm(mine, servers[2], flavor, name="my-cluster-worker-1", role="worker",
                k8s_cluster_id=cluster.id)
    person = f.maintainer(account="oncall", name="On Call")
    team = f.maintainer_group(name="team-dc")
    f.user("operator", operator=True)
    f.user("tenant_admin", tenants=("mine",))
    f.user("maintainer", maintainer_account="oncall")
    db.session.commit()
    return SimpleNamespace(servers=servers, racks=[rack_a, rack_b], my_vms=my_vms,
                           their_vm=their_vm, node=node, cluster=cluster, person=person,
                           team=team, mine=mine)


def as_user(client, name):
    log_in(client, name, f.PASSWORD)
    return client


def token(client, url="/servers/"):
    return csrf_token_from(client.get(url).get_data(as_text=True))


def confirm(client, list_name, action, ids=(), query="", **extra):
    data = {"csrf_token": token(client), "action": action, "id": [str(i) for i in ids], **extra}
    return client.post(f"/bulk/{list_name}{query}", data=data)


def run(client, list_name, action, ids, **params):
    data = {"csrf_token": token(client), "id": [str(i) for i in ids], **params}
    return client.post(f"/bulk/{list_name}/{action}", data=data)


def results(response):
    """(name, outcome) per row of a result page."""
    html = response.get_data(as_text=True)
    rows = re.findall(r'<tr class="bulk-([a-z-]+)">\s*<td>(?:<a [^>]*>([^<]+)</a>|'
                      r'<span class="mono">#(\d+)</span>)', html)
    return [(name or f"#{number}", outcome.replace("-", " ")) for outcome, name, number in rows]


def statuses():
    db.session.expire_all()
    return {s.name: s.status for s in db.session.scalars(select(Baremetal))}


# --- the list pages offer it ------------------------------------------------------------


def test_list_pages_have_a_checkbox_column_inside_the_bulk_form(client, estate):
    as_user(client, "operator")
    for url, name in (("/servers/", "srv-a0"), ("/racks/", "rack-a"), ("/vms/", "my-vm-0")):
        html = client.get(url).get_data(as_text=True)
        assert 'id="bulk-form"' in html and 'name="csrf_token"' in html
        assert f'form="bulk-form" aria-label="Select {name}"' in html
    html = client.get("/servers/?status=active").get_data(as_text=True)
    assert 'action="/bulk/servers?status=active"' in html  # the view's filters travel along
    assert "all 4 matching this view" in html


def test_no_checkboxes_for_who_has_no_action(client, estate):
    as_user(client, "maintainer")
    for url in ("/servers/", "/racks/", "/vms/"):
        html = client.get(url).get_data(as_text=True)
        assert 'id="bulk-form"' not in html and 'name="id"' not in html


# --- server status --------------------------------------------------------------------------


def test_operator_sets_status_row_by_row_one_refusal_undoes_nothing(client, estate):
    as_user(client, "operator")
    ids = [s.id for s in estate.servers]
    page = confirm(client, "servers", "status", ids)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert all(s.name in html for s in estate.servers)
    assert statuses()["srv-a0"] == "active"  # confirming changes nothing
    done = run(client, "servers", "status", ids, status="decommissioned")
    assert done.status_code == 200
    # srv-a0..a2 hold VMs: decommissioning them is refused by the service; srv-b0 is empty.
    assert results(done) == [("srv-a0", "refused"), ("srv-a1", "refused"),
                             ("srv-a2", "refused"), ("srv-b0", "done")]
    assert "Server srv-a0 cannot go decommissioned" in done.get_data(as_text=True)
    assert statuses() == {"srv-a0": "active", "srv-a1": "active", "srv-a2": "active",
                          "srv-b0": "decommissioned"}
    assert "a refusal undid nothing else" in done.get_data(as_text=True)


def test_status_to_maintenance_and_an_already_there_row(client, estate):
    as_user(client, "operator")
    ids = [estate.servers[0].id, estate.servers[3].id]
    run(client, "servers", "status", [ids[1]], status="maintenance")
    done = run(client, "servers", "status", ids, status="maintenance")
    assert results(done) == [("srv-a0", "done"), ("srv-b0", "refused")]
    assert "already maintenance" in done.get_data(as_text=True)
    assert statuses()["srv-a0"] == "maintenance"
    assert counter_drift() == []


def test_a_status_not_chosen_is_asked_again_and_changes_nothing(client, estate):
    as_user(client, "operator")
    response = run(client, "servers", "status", [estate.servers[3].id], status="melted")
    assert response.status_code == 422
    assert "Choose the new status" in response.get_data(as_text=True)
    assert statuses()["srv-b0"] == "active"


def test_tenant_admin_and_maintainer_may_not_change_server_status(client, estate):
    as_user(client, "maintainer")
    assert confirm(client, "servers", "status", [estate.servers[3].id]).status_code == 403
    assert run(client, "servers", "status", [estate.servers[3].id],
               status="offline").status_code == 403
    assert statuses()["srv-b0"] == "active"


# --- select all matching ------------------------------------------------------------------


def test_select_all_matching_takes_every_row_of_the_filtered_view_not_only_the_page(
        client, estate):
    as_user(client, "operator")
    rack_a = estate.racks[0].id
    page = confirm(client, "servers", "status", query=f"?rack={rack_a}&per_page=10",
                   select_all="all")
    html = page.get_data(as_text=True)
    assert {"srv-a0", "srv-a1", "srv-a2"} <= set(re.findall(r">(srv-\w+)<", html))
    assert "srv-b0" not in html
    ids = re.findall(r'<input type="hidden" name="id" value="(\d+)">', html)
    assert sorted(map(int, ids)) == sorted(s.id for s in estate.servers[:3])
    # The confirmation posts on with the view's query string, so Cancel returns to it.
    assert f"/bulk/servers/status?rack={rack_a}" in html
    assert f'href="/servers/?rack={rack_a}' in html


def test_select_all_is_capped(client, estate, monkeypatch):
    from portal.web import bulk

    monkeypatch.setattr(bulk, "MAX_ROWS", 3)
    as_user(client, "operator")
    response = confirm(client, "servers", "status", select_all="all")
    assert response.status_code == 400
    assert "4 servers match this view; bulk actions take at most 3" in response.get_data(
        as_text=True)


# --- selection validation -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "2147483648", "1e3", "१"])
def test_bad_ids_are_refused_and_change_nothing(client, estate, bad):
    as_user(client, "operator")
    response = run(client, "servers", "status", [estate.servers[3].id, bad], status="offline")
    assert response.status_code == 400
    assert "is no row id: ids are whole numbers from 1 to 2147483647" in response.get_data(
        as_text=True)
    assert statuses()["srv-b0"] == "active"


def test_too_many_ids_are_refused(client, estate):
    as_user(client, "operator")
    response = run(client, "servers", "status", range(1, 1002), status="offline")
    assert response.status_code == 400
    assert "at most 1,000 rows at a time; 1,001 were selected" in response.get_data(as_text=True)
    assert set(statuses().values()) == {"active"}


def test_nothing_selected_goes_back_to_the_list_with_a_message(client, estate):
    as_user(client, "operator")
    response = confirm(client, "servers", "status", query="?status=active")
    assert response.status_code == 302 and response.location.endswith("/servers/?status=active")
    assert "Select the servers to act on first" in client.get(response.location).get_data(
        as_text=True)


def test_unknown_action_and_list(client, estate):
    as_user(client, "operator")
    assert confirm(client, "servers", "explode", [estate.servers[0].id]).status_code == 400
    assert client.post("/bulk/nothing", data={"csrf_token": token(client)}).status_code == 404


def test_csrf_is_required(client, estate):
    as_user(client, "operator")
    response = client.post("/bulk/servers/status",
                           data={"id": [str(estate.servers[3].id)], "status": "offline"})
    assert response.status_code == 400
    assert statuses()["srv-b0"] == "active"


# --- maintainer assignment --------------------------------------------------------------------


def assignments(resource_type):
    return sorted(
        (row.resource_id, row.maintainer_id, row.maintainer_group_id, row.responsibility)
        for row in db.session.scalars(
            select(ResourceMaintainer).where(ResourceMaintainer.resource_type == resource_type)
        )
    )


def test_operator_assigns_a_maintainer_to_racks_duplicates_refused_per_row(client, estate):
    as_user(client, "operator")
    rack_a, rack_b = estate.racks
    page = confirm(client, "racks", "assign", [rack_a.id, rack_b.id])
    assert "On Call" in page.get_data(as_text=True) and "team-dc" in page.get_data(as_text=True)
    first = run(client, "racks", "assign", [rack_a.id], assignee=f"person:{estate.person.id}",
                responsibility="hardware")
    assert results(first) == [("rack-a", "done")]
    both = run(client, "racks", "assign", [rack_a.id, rack_b.id],
               assignee=f"person:{estate.person.id}", responsibility="hardware")
    assert results(both) == [("rack-a", "refused"), ("rack-b", "done")]
    assert "already assigned to rack rack-a" in both.get_data(as_text=True)
    assert assignments("rack") == [(rack_a.id, estate.person.id, None, "hardware"),
                                   (rack_b.id, estate.person.id, None, "hardware")]


def test_operator_assigns_a_group_to_servers(client, estate):
    as_user(client, "operator")
    ids = [s.id for s in estate.servers[:2]]
    done = run(client, "servers", "assign", ids, assignee=f"group:{estate.team.id}")
    assert [outcome for _, outcome in results(done)] == ["done", "done"]
    assert assignments("baremetal") == [(i, None, estate.team.id, "") for i in ids]


@pytest.mark.parametrize("assignee", ["", "person:", "person:999999", "robot:1", "group:x"])
def test_an_assignee_that_is_no_one_changes_nothing(client, estate, assignee):
    as_user(client, "operator")
    response = run(client, "racks", "assign", [estate.racks[0].id], assignee=assignee)
    assert response.status_code == 422
    assert "Choose a maintainer or a maintainer group" in response.get_data(as_text=True)
    assert assignments("rack") == []


def test_maintainer_may_not_assign(client, estate):
    as_user(client, "maintainer")
    response = run(client, "racks", "assign", [estate.racks[0].id],
                   assignee=f"person:{estate.person.id}")
    assert response.status_code == 403
    assert assignments("rack") == []


# --- VM delete ----------------------------------------------------------------------------------


def vm_statuses():
    db.session.expire_all()
    return {vm.name: vm.status for vm in db.session.scalars(select(VirtualMachine))}


def test_operator_deletes_vms_cluster_nodes_refused_per_row(client, estate):
    as_user(client, "operator")
    ids = [estate.my_vms[0].id, estate.node.id, estate.their_vm.id]
    page = confirm(client, "vms", "delete", ids)
    assert "deleted through the agent" in page.get_data(as_text=True)
    assert vm_statuses()["my-vm-0"] == "active"
    done = run(client, "vms", "delete", ids)
    assert results(done) == [("my-vm-0", "done"), ("my-cluster-worker-1", "refused"),
                             ("their-vm", "done")]
    assert "is a node of cluster my-cluster" in done.get_data(as_text=True)
    after = vm_statuses()
    assert (after["my-vm-0"], after["my-cluster-worker-1"], after["their-vm"]) == (
        "deleting", "active", "deleting")
    assert counter_drift() == []


def test_tenant_admin_deletes_only_their_own_a_foreign_id_is_not_found(client, estate):
    as_user(client, "tenant_admin")
    ids = [estate.my_vms[0].id, estate.their_vm.id, estate.my_vms[1].id]
    page = confirm(client, "vms", "delete", ids)
    html = page.get_data(as_text=True)
    assert "their-vm" not in html and f"#{estate.their_vm.id}" in html
    done = run(client, "vms", "delete", ids)
    assert results(done) == [("my-vm-0", "done"), ("my-vm-1", "done"),
                             (f"#{estate.their_vm.id}", "not found")]
    assert "their-vm" not in done.get_data(as_text=True)
    after = vm_statuses()
    assert (after["my-vm-0"], after["my-vm-1"], after["their-vm"]) == (
        "deleting", "deleting", "active")
    assert counter_drift() == []


def test_tenant_admin_select_all_is_scoped_to_their_tenants(client, estate):
    as_user(client, "tenant_admin")
    html = confirm(client, "vms", "delete", select_all="all").get_data(as_text=True)
    assert "my-vm-0" in html and "their-vm" not in html
    ids = re.findall(r'<input type="hidden" name="id" value="(\d+)">', html)
    assert estate.their_vm.id not in map(int, ids)


def test_maintainer_may_not_delete_vms(client, estate):
    as_user(client, "maintainer")
    assert confirm(client, "vms", "delete", [estate.my_vms[0].id]).status_code == 403
    assert run(client, "vms", "delete", [estate.my_vms[0].id]).status_code == 403
    assert vm_statuses()["my-vm-0"] == "active"


def test_a_vm_deleted_meanwhile_is_refused_on_its_row(client, estate):
    as_user(client, "operator")
    first = run(client, "vms", "delete", [estate.my_vms[2].id])
    assert results(first) == [("my-vm-2", "done")]
    again = run(client, "vms", "delete", [estate.my_vms[2].id, estate.my_vms[1].id])
    assert results(again) == [("my-vm-2", "refused"), ("my-vm-1", "done")]
    assert "already deleting" in again.get_data(as_text=True)


def test_bulk_delete_on_postgresql_keeps_the_counters_exact(pg_app):
    estate = build_estate()
    client = as_user(pg_app.test_client(), "tenant_admin")
    ids = [vm.id for vm in estate.my_vms] + [estate.node.id, estate.their_vm.id]
    done = run(client, "vms", "delete", ids)
    assert [outcome for _, outcome in results(done)] == [
        "done", "done", "done", "refused", "not found"]
    assert counter_drift() == []


@pytest.mark.parametrize("sort", ["-units_used", "cpu_allocated", "name"])
def test_select_all_keeps_the_views_order(client, estate, sort):
    as_user(client, "operator")
    html = confirm(client, "racks", "assign", query=f"?sort={sort}",
                   select_all="all").get_data(as_text=True)
    listed = re.findall(r">(rack-[ab])</a>", html)
    page = client.get(f"/racks/?sort={sort}").get_data(as_text=True)
    assert listed == re.findall(r'aria-label="Select (rack-[ab])"', page)


def test_a_row_ticked_twice_is_acted_on_once(client, estate):
    as_user(client, "operator")
    server = estate.servers[3]
    done = run(client, "servers", "status", [server.id, server.id], status="offline")
    assert results(done) == [("srv-b0", "done")]
