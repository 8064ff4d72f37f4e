"""The role matrix of SPEC section 6 over every page that exists, and tenant scoping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from portal.extensions import db
from tests import factories as f
from tests.conftest import log_in

ROLES = ("operator", "tenant_admin", "maintainer", "no_role", "anonymous")


@pytest.fixture
def estate(app):
    grp = f.group(name="g1")
    srv = f.server(group=grp)
    mine, theirs = f.tenant(name="mine"), f.tenant(name="theirs")
    f.quota(mine, grp, cpu_limit=10)
    flavor = f.flavor()
    my_vm = f.vm(mine, srv, flavor, name="my-vm")
    their_vm = f.vm(theirs, srv, flavor, name="their-vm")
    their_cluster = f.cluster(theirs, grp, name="their-cluster")
    my_cluster = f.cluster(mine, grp, name="my-cluster")
    person = f.maintainer(account="oncall")
    # The maintainer looks after my-vm and my-cluster only (SPEC section 6).
    from portal.models import ResourceMaintainer

    db.session.add_all([
        ResourceMaintainer(resource_type="virtual_machine", resource_id=my_vm.id,
                           maintainer_id=person.id),
        ResourceMaintainer(resource_type="k8s_cluster", resource_id=my_cluster.id,
                           maintainer_id=person.id),
    ])
    f.user("operator", operator=True)
    f.user("tenant_admin", tenants=("mine",))
    f.user("maintainer", maintainer_account="oncall")
    f.user("no_role")
    db.session.commit()
    return SimpleNamespace(**locals())


def matrix(e):
    """(url, expected status per role in ROLES order). 302 = sent to the login page."""
    return [
        ("/", (200, 200, 200, 200, 302)),
        ("/racks/", (200, 403, 200, 403, 302)),
        ("/servers/", (200, 403, 200, 403, 302)),
        ("/groups/", (200, 200, 200, 403, 302)),
        ("/tenants/", (200, 200, 200, 403, 302)),
        ("/flavors/", (200, 200, 200, 403, 302)),
        ("/vms/", (200, 200, 200, 403, 302)),
        ("/clusters/", (200, 200, 200, 403, 302)),
        ("/meshes/", (200, 403, 200, 403, 302)),
        ("/maintainers/", (200, 403, 200, 403, 302)),
        ("/maintainers/my-assignments", (403, 403, 200, 403, 302)),
        ("/audit/", (200, 403, 403, 403, 302)),
        ("/search/?q=vm", (200, 200, 200, 403, 302)),  # tenant admins: their own objects
        ("/profile", (200, 200, 200, 200, 302)),
        (f"/tenants/{e.mine.id}", (200, 200, 200, 403, 302)),
        (f"/tenants/{e.theirs.id}", (200, 404, 200, 403, 302)),
        (f"/vms/{e.my_vm.id}", (200, 200, 200, 403, 302)),
        (f"/vms/{e.their_vm.id}", (200, 404, 404, 403, 302)),
        (f"/clusters/{e.my_cluster.id}", (200, 200, 200, 403, 302)),
        (f"/clusters/{e.their_cluster.id}", (200, 404, 404, 403, 302)),
        ("/vms/999999", (404, 404, 404, 403, 302)),
        ("/healthz", (200, 200, 200, 200, 200)),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(app, estate, role):
    client = app.test_client()
    if role != "anonymous":
        assert log_in(client, role, f.PASSWORD).status_code == 302
    failures = []
    for url, expected in matrix(estate):
        status = client.get(url).status_code
        if status != expected[ROLES.index(role)]:
            failures.append(f"{url}: {status}, expected {expected[ROLES.index(role)]}")
    assert not failures, failures


def test_every_view_declares_its_access(app):
    """One mechanism for every view: a view without a declared rule fails this test."""
    missing = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not hasattr(app.view_functions[rule.endpoint], "access")
    ]
    assert missing == []


def test_tenant_admin_lists_show_only_their_tenants(app, estate):
    client = app.test_client()
    log_in(client, "tenant_admin", f.PASSWORD)
    for url, mine, theirs in [
        ("/vms/", "my-vm", "their-vm"),
        ("/clusters/", "my-cluster", "their-cluster"),
        ("/tenants/", ">mine<", ">theirs<"),
    ]:
        page = client.get(url).get_data(as_text=True)
        assert mine in page and theirs not in page, url
    # Filtering by another tenant's id shows nothing of theirs either.
    page = client.get(f"/vms/?tenant={estate.theirs.id}").get_data(as_text=True)
    assert "their-vm" not in page
    # Nor does the CSV export.
    csv = client.get("/vms/?format=csv").get_data(as_text=True)
    assert "my-vm" in csv and "their-vm" not in csv


def test_tenant_admin_sees_only_groups_with_quota(app, estate):
    f.group(name="elsewhere")
    db.session.commit()
    client = app.test_client()
    log_in(client, "tenant_admin", f.PASSWORD)
    page = client.get("/groups/").get_data(as_text=True)
    assert ">g1<" in page and "elsewhere" not in page


def test_navigation_follows_roles(app, estate):
    client = app.test_client()
    log_in(client, "tenant_admin", f.PASSWORD)
    page = client.get("/").get_data(as_text=True)
    assert 'href="/vms/"' in page and 'href="/racks/"' not in page and 'href="/audit/"' not in page
    client = app.test_client()
    log_in(client, "operator", f.PASSWORD)
    page = client.get("/").get_data(as_text=True)
    assert 'href="/racks/"' in page and 'href="/audit/"' in page
