"""A maintainer reads the VMs and clusters assigned to them — directly, through their
groups, or inherited through the VM's cluster, server, rack, server group or tenant — and
nothing else (SPEC section 6): in lists, CSV exports, detail pages, search, dashboard
counts and the API, with another's answering 404; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Maintainer, MaintainerToMaintainerGroup, ResourceMaintainer
from tests import factories as f
from tests.api.conftest import Api, token_for
from tests.conftest import log_in
from tests.web.test_lists import count_queries

VISIBLE_VMS = {"vm-direct", "vm-via-group", "vm-node", "vm-on-server", "vm-in-rack",
               "vm-in-group", "vm-of-tenant"}
VISIBLE_CLUSTERS = {"cl-direct", "cl-in-group", "cl-of-tenant"}


def assign(resource_type: str, resource_id: int, person=None, team=None) -> None:
    db.session.add(ResourceMaintainer(
        resource_type=resource_type, resource_id=resource_id,
        maintainer_id=person.id if person else None,
        maintainer_group_id=team.id if team else None))


def build():
    flavor = f.flavor()
    other_rack, my_rack = f.rack(), f.rack()
    other_group, my_group = f.group(), f.group()
    other_tenant, my_tenant = f.tenant(), f.tenant()
    plain = f.server(rack=other_rack, group=other_group)  # nobody's: only direct VMs show
    my_server = f.server(rack=other_rack, group=other_group, rack_unit=3)
    in_my_rack = f.server(rack=my_rack, group=other_group)
    in_my_group = f.server(group=my_group)

    def vm(name, server=plain, tenant=other_tenant, **kw):
        return f.vm(tenant, server, flavor, name=name, **kw)

    cl_direct = f.cluster(other_tenant, other_group, name="cl-direct")
    f.cluster(other_tenant, my_group, name="cl-in-group")
    f.cluster(my_tenant, other_group, name="cl-of-tenant")
    f.cluster(other_tenant, other_group, name="cl-hidden")
    direct, via_group = vm("vm-direct"), vm("vm-via-group")
    vm("vm-node", k8s_cluster_id=cl_direct.id, role="worker")
    vm("vm-on-server", my_server)
    vm("vm-in-rack", in_my_rack)
    vm("vm-in-group", in_my_group)
    vm("vm-of-tenant", tenant=my_tenant)
    hidden = vm("vm-hidden")
    vm("vm-hidden-too", f.server(rack=other_rack, group=other_group, rack_unit=5))

    person, team = f.maintainer(account="oncall"), f.maintainer_group()
    db.session.add(MaintainerToMaintainerGroup(maintainer_id=person.id, group_id=team.id))
    assign("virtual_machine", direct.id, person=person)
    assign("virtual_machine", via_group.id, team=team)
    assign("k8s_cluster", cl_direct.id, person=person)
    assign("baremetal", my_server.id, team=team)
    assign("rack", my_rack.id, person=person)
    assign("baremetal_group", my_group.id, team=team)
    assign("tenant", my_tenant.id, person=person)
    # Someone else's assignments show nothing to this maintainer.
    assign("virtual_machine", hidden.id, person=f.maintainer())
    user = f.user("oncall", maintainer_account="oncall")
    db.session.commit()
    return SimpleNamespace(hidden=hidden, user=user, cl_hidden_name="cl-hidden", plain=plain,
                           other_rack=other_rack, other_tenant=other_tenant)


@pytest.fixture
def estate(any_app):
    return build()


@pytest.fixture
def client(any_app, estate):
    client = any_app.test_client()
    assert log_in(client, "oncall", f.PASSWORD).status_code == 302
    return client


def exported(client, path: str) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(client.get(f"{path}?format=csv").get_data(
        as_text=True))))
    return {row["Name"] for row in rows}


def test_lists_and_exports_hold_only_assigned_vms_and_clusters(client):
    assert exported(client, "/vms/") == VISIBLE_VMS
    assert exported(client, "/clusters/") == VISIBLE_CLUSTERS
    page = client.get("/vms/?per_page=100").get_data(as_text=True)
    assert "vm-direct" in page and "vm-hidden" not in page


def test_another_vm_or_cluster_is_not_found(client, estate):
    from portal.models import K8sCluster, VirtualMachine

    hidden_cluster = db.session.scalar(select(K8sCluster).where(K8sCluster.name == "cl-hidden"))
    assert client.get(f"/vms/{estate.hidden.id}").status_code == 404
    assert client.get(f"/clusters/{hidden_cluster.id}").status_code == 404
    for name in VISIBLE_VMS:
        vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == name))
        assert client.get(f"/vms/{vm.id}").status_code == 200, name


def test_search_and_dashboard_count_only_assigned(client):
    found = client.get("/search/?q=vm-").get_data(as_text=True)
    assert "vm-direct" in found and "vm-hidden" not in found
    found = client.get("/search/?q=cl-").get_data(as_text=True)
    assert "cl-direct" in found and "cl-hidden" not in found
    dashboard = client.get("/").get_data(as_text=True)
    vms_card = dashboard.split("Virtual machines by status")[1].split("</section>")[0]
    assert f'<span class="num">{len(VISIBLE_VMS)}</span>' in vms_card
    assert "Recent changes" not in dashboard  # the audit trail is for operators


def test_api_lists_and_reads_only_assigned(any_app, estate):
    api, token = Api(any_app.test_client()), token_for(estate.user)
    vms = api.get("/vms?limit=100", token).get_json()
    assert {v["name"] for v in vms["items"]} == VISIBLE_VMS and vms["total"] == len(VISIBLE_VMS)
    clusters = api.get("/clusters", token).get_json()
    assert {c["name"] for c in clusters["items"]} == VISIBLE_CLUSTERS
    assert api.get(f"/vms/{estate.hidden.id}", token).status_code == 404


def test_the_vm_list_is_two_queries_whatever_the_rows(client):
    """The visibility rule is subqueries of the list's own query: no query per row."""
    client.get("/vms/")  # warm up: the session's own queries
    with count_queries() as few:
        client.get("/vms/?per_page=100")
    person = db.session.scalar(select(Maintainer).where(Maintainer.account == "oncall"))
    for i in range(5):
        assign("virtual_machine", f.vm(f.tenant(), f.server(), f.flavor(), name=f"more-{i}").id,
               person=person)
    db.session.commit()
    with count_queries() as more:
        page = client.get("/vms/?per_page=100").get_data(as_text=True)
    assert "more-4" in page
    assert more["n"] == few["n"]


def test_operators_still_see_everything(any_app, estate):
    f.user("ops", operator=True)
    db.session.commit()
    client = any_app.test_client()
    log_in(client, "ops", f.PASSWORD)
    assert {"vm-hidden", "vm-hidden-too"} <= exported(client, "/vms/")
    assert "cl-hidden" in exported(client, "/clusters/")


def test_server_rack_and_tenant_pages_name_only_assigned_vms(client, estate):
    """Inventory pages stay readable, but the VMs they list follow the same rule."""
    server = client.get(f"/servers/{estate.plain.id}").get_data(as_text=True)
    assert "vm-direct" in server and "vm-hidden" not in server
    rack = client.get(f"/racks/{estate.other_rack.id}").get_data(as_text=True)
    assert "vm-on-server" in rack and "vm-hidden" not in rack and "vm-hidden-too" not in rack
    tenant = client.get(f"/tenants/{estate.other_tenant.id}").get_data(as_text=True)
    assert "vm-direct" in tenant and "vm-hidden" not in tenant and "cl-hidden" not in tenant
