"""Maintainers, groups, assignments on every resource type, inheritance, My assignments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.maintainers import service
from portal.models import (
    ASSIGNABLE_TYPES,
    MaintainerGroup,
    MaintainerToMaintainerGroup,
    ResourceMaintainer,
)
from tests import factories as f
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def world(app):
    rack = f.rack(name="r-01")
    grp = f.group(name="north")
    server = f.server(rack=rack, group=grp, name="bm-01")
    tenant, other = f.tenant(name="acme"), f.tenant(name="globex")
    f.quota(tenant, grp)
    flavor = f.flavor()
    cluster = f.cluster(tenant, grp, name="shop")
    vm = f.vm(tenant, server, flavor, name="shop-cp-1", cluster=cluster, role="control-plane")
    their_vm = f.vm(other, server, flavor, name="theirs")
    mesh = f.mesh(name="istio")
    ana, bob, cai = (
        f.maintainer(name=n, account=n.lower(), phone=f"+886-{i}", email=f"{n}@x")
        for i, n in enumerate(("Ana", "Bob", "Cai"))
    )
    team = f.maintainer_group(name="SRE", manager=bob)
    for person in (ana, bob):
        db.session.add(MaintainerToMaintainerGroup(maintainer=person, group=team))
    op = f.user("op", operator=True)
    f.user("ta", tenants=("acme",))
    f.user("ana-login", maintainer_account="ana")
    db.session.commit()
    resources = {
        "rack": rack,
        "baremetal": server,
        "baremetal_group": grp,
        "tenant": tenant,
        "virtual_machine": vm,
        "k8s_cluster": cluster,
        "service_mesh": mesh,
    }
    return SimpleNamespace(**locals())


@pytest.mark.parametrize("kind", ASSIGNABLE_TYPES)
def test_assign_and_unassign_on_every_resource_type(world, kind):
    resource = world.resources[kind]
    person = service.assign(
        kind,
        resource.id,
        user=world.op,
        maintainer_id=world.ana.id,
        responsibility="primary on-call",
    )
    service.assign(kind, resource.id, user=world.op, group_id=world.team.id)
    with pytest.raises(service.MaintainerError, match="already assigned"):
        service.assign(kind, resource.id, user=world.op, maintainer_id=world.ana.id)
    db.session.rollback()
    with pytest.raises(service.MaintainerError, match="already assigned"):
        service.assign(kind, resource.id, user=world.op, group_id=world.team.id)
    db.session.rollback()
    with pytest.raises(service.MaintainerError, match="one of them"):
        service.assign(
            kind, resource.id, user=world.op, maintainer_id=world.ana.id, group_id=world.team.id
        )
    rows = service.maintainers_panel(kind, resource, inherit=False)
    assert [(r.assignment.maintainer_id, r.assignment.maintainer_group_id) for r in rows] == [
        (world.ana.id, None),
        (None, world.team.id),
    ]
    group_row = rows[1]
    assert group_row.manager.name == "Bob"
    assert [m.name for m, _ in group_row.members] == ["Bob", "Ana"]  # manager first
    service.unassign(person.id, user=world.op)
    assert db.session.scalar(select(func.count(ResourceMaintainer.id))) == 1


def test_who_to_call_inherits_from_cluster_server_rack_and_group(world):
    w = world
    service.assign(
        "k8s_cluster", w.cluster.id, user=w.op, group_id=w.team.id, responsibility="platform"
    )
    service.assign("rack", w.rack.id, user=w.op, maintainer_id=w.cai.id, responsibility="hands")
    service.assign("baremetal_group", w.grp.id, user=w.op, maintainer_id=w.bob.id)
    service.assign("virtual_machine", w.vm.id, user=w.op, maintainer_id=w.ana.id)
    assert service.who_to_call("virtual_machine", w.vm) is None  # active: nobody to call
    w.vm.status = "error"
    db.session.commit()
    call = service.who_to_call("virtual_machine", w.vm)
    assert [(r.inherited_from, r.assignment.responsibility) for r in call] == [
        (None, ""),
        ("cluster shop", "platform"),
        ("rack r-01", "hands"),
        ("group north", ""),
    ]


def test_my_assignments_direct_and_through_groups_urgent_first(world):
    w = world
    service.assign("k8s_cluster", w.cluster.id, user=w.op, group_id=w.team.id)
    service.assign("baremetal", w.server.id, user=w.op, maintainer_id=w.ana.id)
    other = f.server(name="bm-00", status="maintenance")
    db.session.commit()
    service.assign("baremetal", other.id, user=w.op, maintainer_id=w.ana.id)
    grouped = service.assignments_of(w.ana)
    assert [a.resource.name for a in grouped["baremetal"]] == ["bm-00", "bm-01"]
    assert grouped["k8s_cluster"][0].via_group == "SRE"
    assert grouped["baremetal"][0].via_group is None


def test_my_assignments_page_and_nav_count(app, world):
    service.assign("k8s_cluster", world.cluster.id, user=world.op, group_id=world.team.id)
    client = app.test_client()
    log_in(client, "ana-login", f.PASSWORD)
    page = client.get("/maintainers/my-assignments").get_data(as_text=True)
    assert "through group <strong>SRE</strong>" in page and f"/clusters/{world.cluster.id}" in page
    assert 'title="1 assigned to you"' in client.get("/").get_data(as_text=True)


def test_deleting_a_manager_needs_confirmation_naming_the_group(world):
    with pytest.raises(service.MaintainerError, match="manages SRE"):
        service.delete_maintainer(world.bob, user=world.op)
    db.session.rollback()
    service.delete_maintainer(world.bob, user=world.op, leave_groups_without_manager=True)
    db.session.expire_all()
    assert world.team.manager_id is None
    assert db.session.scalar(select(func.count(MaintainerToMaintainerGroup.id))) == 1


def test_manager_becomes_member_and_cannot_be_removed_while_managing(world):
    group = service.save_group(None, user=world.op, name="DC ops", manager_id=world.cai.id)
    assert [m.maintainer.name for m in service.group_members(group)] == ["Cai"]
    with pytest.raises(service.MaintainerError, match="manages DC ops"):
        service.remove_member(group, world.cai.id, user=world.op)
    db.session.rollback()
    service.add_member(group, world.ana.id, user=world.op)
    with pytest.raises(service.MaintainerError, match="already in DC ops"):
        service.add_member(group, world.ana.id, user=world.op)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"account": "Has Space"}, "lowercase"),
        ({"account": "bob"}, "taken"),
        ({"email": "nope"}, "not an email"),
        ({"username": "ghost"}, "No login account"),
        ({"name": ""}, "1 to 128"),
    ],
)
def test_maintainer_validation(world, fields, message):
    args = {"name": "Dee", "account": "dee", **fields}
    with pytest.raises(service.MaintainerError, match=message):
        service.save_maintainer(None, user=world.op, **args)


def test_panel_in_place_through_htmx_and_roles(app, world):
    op = app.test_client()
    log_in(op, "op", f.PASSWORD)
    url = f"/maintainers/panel/virtual_machine/{world.vm.id}"
    token = csrf_token_from(op.get(f"/vms/{world.vm.id}").get_data(as_text=True))
    response = op.post(
        url,
        data={
            "csrf_token": token,
            "op": "assign",
            "assignee": f"group:{world.team.id}",
            "responsibility": "db",
        },
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and "Group SRE" in html
    again = op.post(
        url,
        data={"csrf_token": token, "op": "assign", "assignee": f"group:{world.team.id}"},
        headers={"HX-Request": "true"},
    )
    assert again.status_code == 422 and "already assigned" in again.get_data(as_text=True)
    # Without JavaScript: an exact search term picks the person.
    plain = op.post(url, data={"csrf_token": token, "op": "assign", "q": "cai", "next": "/vms/"})
    assert plain.status_code == 302 and plain.headers["Location"] == "/vms/"
    assert db.session.scalar(select(func.count(ResourceMaintainer.id))) == 2

    ta = app.test_client()
    log_in(ta, "ta", f.PASSWORD)
    assert "Group SRE" in ta.get(url).get_data(as_text=True)  # reads own resources' maintainers
    assert ta.get(f"/maintainers/panel/virtual_machine/{world.their_vm.id}").status_code == 404
    assert ta.get(f"/maintainers/panel/rack/{world.rack.id}").status_code == 404
    token = csrf_token_from(ta.get(f"/vms/{world.vm.id}").get_data(as_text=True))
    assert (
        ta.post(url, data={"csrf_token": token, "op": "remove", "assignment_id": 1}).status_code
        == 403
    )
    assert ta.get("/maintainers/").status_code == 403

    maint = app.test_client()
    log_in(maint, "ana-login", f.PASSWORD)
    assert maint.get(url).status_code == 200 and maint.get("/maintainers/").status_code == 200
    assert maint.post(
        url, data={"csrf_token": token, "op": "remove", "assignment_id": 1}
    ).status_code in (400, 403)


def test_lists_filter_by_maintainer_and_group(app, world):
    service.assign("k8s_cluster", world.cluster.id, user=world.op, group_id=world.team.id)
    service.assign("virtual_machine", world.vm.id, user=world.op, maintainer_id=world.cai.id)
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    html = client.get(f"/vms/?maintainer={world.cai.id}").get_data(as_text=True)
    assert "shop-cp-1" in html and "theirs" not in html
    assert "shop" in client.get(f"/clusters/?maintainer={world.ana.id}").get_data(as_text=True)
    html = client.get(f"/clusters/?maintainer_group={world.team.id}").get_data(as_text=True)
    assert ">shop<" in html
    html = client.get(f"/vms/?maintainer_group={world.team.id}").get_data(as_text=True)
    assert "shop-cp-1" not in html  # the group maintains the cluster, not the VM


def test_maintainer_pages(app, world):
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    token = csrf_token_from(client.get("/maintainers/new").get_data(as_text=True))
    response = client.post(
        "/maintainers/new",
        data={"csrf_token": token, "name": "王小明", "account": "xmwang", "status": "active"},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "王小明" in page
    bad = client.post(
        "/maintainers/new",
        data={"csrf_token": token, "name": "X", "account": "bob", "status": "active"},
    )
    assert "Account bob is taken" in bad.get_data(as_text=True)
    group_page = client.get(f"/maintainers/groups/{world.team.id}").get_data(as_text=True)
    assert "manager" in group_page and "Bob" in group_page
    response = client.post(
        f"/maintainers/groups/{world.team.id}/members",
        data={"csrf_token": token, "op": "add", "maintainer_ref": f"person:{world.cai.id}"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Cai" in response.get_data(as_text=True)
    dup = client.post(
        f"/maintainers/groups/{world.team.id}/members",
        data={"csrf_token": token, "op": "add", "maintainer_ref": f"person:{world.cai.id}"},
        headers={"HX-Request": "true"},
    )
    assert dup.status_code == 422 and "already in SRE" in dup.get_data(as_text=True)
    confirm = client.get(f"/maintainers/{world.bob.id}/delete").get_data(as_text=True)
    assert "Leave SRE without a manager" in confirm
    refused = client.post(f"/maintainers/{world.bob.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and db.session.get(MaintainerGroup, world.team.id).manager_id
    page = refused.get_data(as_text=True)  # the reason, and the question again to tick
    assert 'id="delete-refusal"' in page and 'name="confirm_groups"' in page
    deleted = client.post(f"/maintainers/{world.bob.id}/delete",
                          data={"csrf_token": token, "confirm_groups": "yes"})
    assert deleted.status_code == 302 and deleted.location.endswith("/maintainers/")
    assert db.session.get(MaintainerGroup, world.team.id).manager_id is None


def test_racks_and_servers_filter_by_maintainer_and_group(app, world):
    other_rack = f.rack(name="r-99")
    f.server(rack=other_rack, name="bm-99")
    db.session.commit()
    service.assign("rack", world.rack.id, user=world.op, group_id=world.team.id)
    service.assign("baremetal", world.server.id, user=world.op, maintainer_id=world.bob.id)
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    html = client.get(f"/racks/?maintainer_group={world.team.id}").get_data(as_text=True)
    assert ">r-01<" in html and "r-99" not in html
    html = client.get(f"/racks/?maintainer={world.ana.id}").get_data(as_text=True)  # via SRE
    assert ">r-01<" in html and "r-99" not in html
    html = client.get(f"/servers/?maintainer={world.bob.id}").get_data(as_text=True)
    assert ">bm-01<" in html and "bm-99" not in html


def test_global_search_links_to_pages(app, world):
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    html = client.get("/search/?q=shop").get_data(as_text=True)
    assert f'href="/clusters/{world.cluster.id}"' in html and f'href="/vms/{world.vm.id}"' in html
    html = client.get("/search/?q=bm-&type=baremetal").get_data(as_text=True)
    assert f'href="/servers/{world.server.id}"' in html and "shop-cp-1" not in html
