"""What a newcomer's walk asked of the workload pages (issue 14): the wizards' live preview
names what is wrong instead of showing the starting hint; the VM page links its server,
rack and tenant; deleted VMs stay out of the list and its count unless asked for (the API
keeps listing them); the maintainer groups list pages, sorts and filters like every list."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from portal.extensions import db
from portal.models import MaintainerToMaintainerGroup
from tests import factories as f
from tests.api.conftest import token_for
from tests.conftest import csrf_token_from, log_in

VM_HINT = "Choose a group and a flavor to see where the VMs would go."
CLUSTER_HINT = "Choose a group and the flavors to see where every node would go."


@pytest.fixture
def estate(app):
    base = f.acme_on_one_server()
    tenant, server, flavor = base.tenant, base.server, base.flavor
    mesh = f.mesh(name="mesh-a")
    live = f.vm(tenant, server, flavor, name="web-1")
    gone = [f.vm(tenant, server, flavor, name=f"old-{i}", status="deleted") for i in range(3)]
    db.session.commit()
    return SimpleNamespace(**vars(base), mesh=mesh, live=live, gone=gone)


@pytest.fixture
def ops(app, estate):
    client = app.test_client()
    assert log_in(client, "ops", f.PASSWORD).status_code == 302
    return client


def _post(client, page, url, data):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token}, headers={"HX-Request": "true"})


# --- the live preview shows the reasons ------------------------------------------------------


def test_vm_preview_with_an_empty_name_says_so_instead_of_the_starting_hint(ops, estate):
    answer = _post(ops, "/vms/new", "/vms/preview", {
        "tenant_id": estate.tenant.id, "group_id": estate.grp.id, "spec_id": estate.flavor.id,
        "name": "", "count": 1})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert VM_HINT not in html
    assert 'id="preview-invalid"' in html and "Give the VM a name." in html


def test_vm_preview_lists_every_reason_at_once(ops, estate):
    html = _post(ops, "/vms/new", "/vms/preview", {
        "tenant_id": estate.tenant.id, "group_id": estate.grp.id, "spec_id": estate.flavor.id,
        "name": "bad name", "count": 99}).get_data(as_text=True)
    assert "no spaces" in html and "Ask for 1 to 50 VMs at a time." in html


def test_vm_preview_still_starts_with_the_hint_until_a_group_and_flavor_are_chosen(ops, estate):
    html = _post(ops, "/vms/new", "/vms/preview", {
        "tenant_id": estate.tenant.id, "name": ""}).get_data(as_text=True)
    assert VM_HINT in html and 'id="preview-invalid"' not in html


def _cluster(estate, **overrides):
    return {"tenant_id": estate.tenant.id, "group_id": estate.grp.id, "name": "lab",
            "version": "1.31.2", "control_planes": 1,
            "control_plane_flavor_id": estate.flavor.id, "workers": 1,
            "worker_flavor_id": estate.flavor.id, "bastion": "none", **overrides}


@pytest.mark.parametrize("overrides, reason", [
    ({"name": ""}, "Give the cluster a name."),
    ({"plugins": ["calico", "cilium"]}, "One network plugin per cluster: calico and cilium"),
    ("same mesh", "The secondary mesh must differ from the primary."),
])
def test_cluster_preview_shows_why_the_request_is_invalid(ops, estate, overrides, reason):
    if overrides == "same mesh":
        overrides = {"primary_mesh_id": estate.mesh.id, "secondary_mesh_id": estate.mesh.id}
    html = _post(ops, "/clusters/new", "/clusters/preview",
                 _cluster(estate, **overrides)).get_data(as_text=True)
    assert CLUSTER_HINT not in html
    assert 'id="preview-invalid"' in html and reason in html


def test_a_valid_cluster_request_still_previews_its_plan(ops, estate):
    html = _post(ops, "/clusters/new", "/clusters/preview", _cluster(estate)).get_data(as_text=True)
    assert "preview-ok" in html and 'id="preview-invalid"' not in html


# --- the VM page links what it names --------------------------------------------------------


def test_the_vm_page_links_its_server_rack_and_tenant(ops, estate):
    html = ops.get(f"/vms/{estate.live.id}").get_data(as_text=True)
    assert f'href="/servers/{estate.server.id}">s-1</a>' in html
    assert f'href="/racks/{estate.rack.id}">r-a</a>' in html
    assert f'href="/tenants/{estate.tenant.id}">acme</a>' in html


def test_a_tenant_admin_gets_links_only_to_pages_they_may_open(app, estate):
    from flask_login import login_user

    client = app.test_client()
    assert log_in(client, "admin", f.PASSWORD).status_code == 302
    html = client.get(f"/vms/{estate.live.id}").get_data(as_text=True)
    assert "s-1" in html and "r-a" in html
    with app.test_request_context():
        from portal.auth.access import can
        from portal.models import User

        login_user(db.session.scalar(db.select(User).where(User.username == "admin")))
        allowed = {area: can(area) for area in ("baremetals", "racks", "tenants")}
    for area, link in (("baremetals", f'href="/servers/{estate.server.id}"'),
                       ("racks", f'href="/racks/{estate.rack.id}"'),
                       ("tenants", f'href="/tenants/{estate.tenant.id}"')):
        assert (link in html) == allowed[area]


# --- deleted VMs stay out of the way ----------------------------------------------------------


def _names(html):
    return {name for name in ("web-1", "old-0", "old-1", "old-2") if f">{name}</a>" in html}


def test_the_vm_list_and_its_count_leave_deleted_vms_out_by_default(ops, estate):
    html = ops.get("/vms/").get_data(as_text=True)
    assert _names(html) == {"web-1"}
    assert "of 1" in html and "of 4" not in html


def test_deleted_vms_show_when_a_filter_asks(ops, estate):
    assert _names(ops.get("/vms/?status=deleted").get_data(as_text=True)) == {
        "old-0", "old-1", "old-2"}
    shown = ops.get("/vms/?deleted=shown").get_data(as_text=True)
    assert _names(shown) == {"web-1", "old-0", "old-1", "old-2"} and "of 4" in shown
    csv = ops.get("/vms/?format=csv").get_data(as_text=True)
    assert "web-1" in csv and "old-0" not in csv


def test_the_api_keeps_listing_deleted_vms_as_documented(app, estate):
    from tests.api.conftest import Api

    api = Api(app.test_client())
    token = token_for(db.session.scalar(db.select(f.User).where(f.User.username == "ops")))
    body = api.get("/vms", token).get_json()
    assert body["total"] == 4


# --- the maintainer groups list is a list like the others -----------------------------------


@pytest.fixture
def teams(app, estate):
    people = [f.maintainer(name=f"P{i}", account=f"p{i}") for i in range(3)]
    made = []
    for i in range(60):
        group = f.maintainer_group(name=f"team-{i:02d}", description="night shift" if i % 2
                                   else "day shift", manager_id=people[0].id if i < 5 else None)
        for person in people[: i % 4]:
            db.session.add(MaintainerToMaintainerGroup(maintainer_id=person.id, group_id=group.id))
        made.append(group)
    db.session.commit()
    return made


def _group_names(html):
    import re

    return re.findall(r">(team-\d\d)</a>", html)


def test_the_groups_list_pages(ops, teams):
    first = ops.get("/maintainers/groups/?per_page=25").get_data(as_text=True)
    assert _group_names(first) == [f"team-{i:02d}" for i in range(25)]
    assert "of 60" in first
    last = ops.get("/maintainers/groups/?per_page=25&page=3").get_data(as_text=True)
    assert _group_names(last) == [f"team-{i:02d}" for i in range(50, 60)]


def test_the_groups_list_sorts_by_members_and_searches_and_filters(ops, teams):
    by_members = _group_names(ops.get("/maintainers/groups/?sort=-members&per_page=100")
                              .get_data(as_text=True))
    # Ties break in the sort's direction (one index serves both, portal/web/listing.py).
    assert by_members[:5] == ["team-59", "team-55", "team-51", "team-47", "team-43"]
    ascending = _group_names(ops.get("/maintainers/groups/?sort=members&per_page=100")
                             .get_data(as_text=True))
    assert ascending == by_members[::-1]
    night = _group_names(ops.get("/maintainers/groups/?q=night&per_page=100")
                         .get_data(as_text=True))
    assert night == [f"team-{i:02d}" for i in range(1, 60, 2)]
    managed = _group_names(ops.get("/maintainers/groups/?managed=yes").get_data(as_text=True))
    assert managed == [f"team-{i:02d}" for i in range(5)]


def test_the_groups_list_exports_its_view_and_answers_htmx_with_the_table(ops, teams):
    csv = ops.get("/maintainers/groups/?managed=no&format=csv").get_data(as_text=True)
    assert csv.splitlines()[0] == "Group,Manager,Members,Description"
    assert len(csv.splitlines()) == 56
    partial = ops.get("/maintainers/groups/?q=team-0", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True)
    assert partial.headers["HX-Push-Url"] == "/maintainers/groups/?q=team-0"
