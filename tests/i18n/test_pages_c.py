"""Area c (workloads): every page of VMs, clusters, meshes, maintainers and webhooks in
Traditional Chinese leaves no English interface text (data aside) — lists, details, the
wizards with a refusal and with an invalid request, forms, forms posted with bad input,
confirmations, a 404 — as an operator, a tenant admin and a maintainer; and the same pages
in English still read English, so the test fails if translation broke either way."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import (
    BastionClusterAssociation,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    MaintainerToMaintainerGroup,
    ProvisionJob,
    ResourceMaintainer,
    Webhook,
    WebhookDelivery,
)
from tests import factories
from tests.conftest import csrf_token_from
from tests.i18n.leaks import data_strings, english_left

ZH = {"Accept-Language": "zh-TW"}
EN = {"Accept-Language": "en"}


@pytest.fixture
def estate(app):
    """A small estate like the demo's: a rack of servers in one group, a tenant with quota,
    VMs in several states (one deleted), a cluster with plugins, meshes and a bastion,
    people and a group assigned to it, a webhook with a delivery."""
    rack = factories.rack(name="tpe1-r01", region="tw-north", dc="tpe1")
    group = factories.group(name="tpe1-general")
    servers = [factories.server(rack=rack, group=group, name=f"tpe1-r01-s0{i}",
                                region="tw-north", dc="tpe1", rack_unit=i * 2)
               for i in range(1, 4)]
    tenant = factories.tenant(name="研發中心")
    factories.quota(tenant, group, cpu_limit=64, memory_limit=256, storage_limit=4000)
    small = factories.flavor(name="Standard-4C8G", cpu=4, memory=8, storage=80)
    huge = factories.flavor(name="Huge-96C", cpu=96, memory=512, storage=100)
    web = factories.vm(tenant, servers[0], small, name="web-01")
    failed = factories.vm(tenant, servers[1], small, name="db-01", status="error",
                          status_message="qemu: disk full")
    factories.vm(tenant, servers[2], small, name="old-01", status="deleted")
    db.session.add(ProvisionJob(vm_id=web.id, action="create", status="succeeded",
                                attempts=1, claimed_by="agent-1", result_message="建置完成"))
    db.session.add(ProvisionJob(vm_id=failed.id, action="create", status="failed",
                                attempts=3, claimed_by="agent-1"))
    cluster = factories.cluster(tenant, group, name="shop-prod")
    for i, role in enumerate(("control-plane", "worker", "worker")):
        factories.vm(tenant, servers[i], small, name=f"shop-prod-{role}-{i}", role=role,
                     k8s_cluster_id=cluster.id)
    bastion = factories.vm(tenant, servers[2], small, name="shop-bastion", role="bastion")
    mesh = factories.mesh(name="mesh-north", mesh_type="istio", description="主要 Mesh")
    db.session.add_all([
        K8sClusterPlugin(cluster_id=cluster.id, name="calico", category="network",
                         version="3.28.1"),
        K8sClusterPlugin(cluster_id=cluster.id, name="prometheus", category="monitoring",
                         version="2.54.1", status="error"),
        K8sClusterToServiceMesh(cluster_id=cluster.id, service_mesh_id=mesh.id, role="primary"),
        BastionClusterAssociation(vm_id=bastion.id, cluster_id=cluster.id,
                                  tenant_id=tenant.id, created_with_cluster=True),
    ])
    person = factories.maintainer(name="陳美玲", account="mlchen", email="mlchen@example.tw",
                                  phone="02-1234-5678")
    other = factories.maintainer(name="林志明", account="cmlin")
    team = factories.maintainer_group(name="平台組", description="值班", manager_id=person.id)
    db.session.add_all([
        MaintainerToMaintainerGroup(maintainer_id=person.id, group_id=team.id),
        MaintainerToMaintainerGroup(maintainer_id=other.id, group_id=team.id),
        ResourceMaintainer(resource_type="k8s_cluster", resource_id=cluster.id,
                           maintainer_id=person.id, responsibility="主要值班"),
        ResourceMaintainer(resource_type="virtual_machine", resource_id=failed.id,
                           maintainer_group_id=team.id, responsibility="資料庫"),
    ])
    hook = Webhook(name="ci-hook", url="https://hooks.example/ci", secret="s" * 32,
                   events=["vm.created"], tenant_id=tenant.id)
    db.session.add(hook)
    db.session.flush()
    db.session.add(WebhookDelivery(webhook_id=hook.id, event_id="e1", event_type="vm.created",
                                   body="{}", status="failed", attempts=2,
                                   last_status_code=500, last_error="HTTP 500"))
    factories.user("ops", operator=True)
    factories.user("admin1", tenants=(tenant.name,))
    factories.user("mei", maintainer_account="mlchen")
    db.session.commit()
    return {"vm": web, "failed": failed, "cluster": cluster, "mesh": mesh, "person": person,
            "team": team, "hook": hook, "group": group, "tenant": tenant, "flavor": small,
            "huge": huge}


def _pages(e) -> list[str]:
    vm, cluster, mesh = e["vm"].id, e["cluster"].id, e["mesh"].id
    person, team, hook = e["person"].id, e["team"].id, e["hook"].id
    return [
        "/vms/", "/vms/?deleted=shown", "/vms/?status=error", f"/vms/{vm}",
        f"/vms/{e['failed'].id}", f"/vms/{vm}/delete", "/vms/new",
        "/clusters/", f"/clusters/{cluster}", f"/clusters/{cluster}/delete", "/clusters/new",
        "/meshes/", f"/meshes/{mesh}", "/meshes/new", f"/meshes/{mesh}/edit",
        f"/meshes/{mesh}/delete",
        "/maintainers/", f"/maintainers/{person}", "/maintainers/new",
        f"/maintainers/{person}/edit", f"/maintainers/{person}/delete",
        "/maintainers/groups/", "/maintainers/groups/?sort=-members", f"/maintainers/groups/{team}",
        "/maintainers/groups/new", f"/maintainers/groups/{team}/edit",
        f"/maintainers/groups/{team}/delete",
        "/webhooks/", f"/webhooks/{hook}", "/webhooks/new", f"/webhooks/{hook}/edit",
        f"/webhooks/{hook}/delete",
        "/vms/999999", "/clusters/999999",
    ]


def _wizard_posts(e) -> list[tuple[str, dict]]:
    """A refusal (a flavor larger than any server), an invalid request (no name), the
    cluster wizard with two network plugins and the same mesh twice, and a plan that fits."""
    base = {"tenant_id": e["tenant"].id, "group_id": e["group"].id}
    return [
        ("/vms/new", {**base, "spec_id": e["huge"].id, "name": "big", "count": 1,
                      "action": "preview"}),
        ("/vms/new", {**base, "spec_id": e["flavor"].id, "name": "", "count": 1,
                      "action": "create"}),
        ("/vms/new", {**base, "spec_id": e["flavor"].id, "name": "api", "count": 1,
                      "action": "preview"}),
        ("/clusters/new", {**base, "name": "", "version": "1.31.2", "control_planes": 1,
                           "control_plane_flavor_id": e["flavor"].id, "workers": 1,
                           "worker_flavor_id": e["flavor"].id,
                           "plugins": ["calico", "cilium"],
                           "primary_mesh_id": e["mesh"].id, "secondary_mesh_id": e["mesh"].id,
                           "bastion": "none", "action": "preview"}),
        ("/clusters/new", {**base, "name": "lab", "version": "1.31.2", "control_planes": 1,
                           "control_plane_flavor_id": e["flavor"].id, "workers": 1,
                           "worker_flavor_id": e["flavor"].id, "bastion": "none",
                           "action": "preview"}),
        ("/meshes/new", {"name": "", "mesh_type": "istio", "version": "", "status": "active"}),
        ("/maintainers/new", {"name": "x", "account": "Bad Account", "status": "active"}),
        ("/maintainers/groups/new", {"name": ""}),
        ("/webhooks/new", {"name": "h", "url": "ftp://x", "events": ["vm.created"]}),
        (f"/clusters/{e['cluster'].id}/actions", {"op": "scale", "workers": "1"}),
    ]


def _visit(client, headers):
    """Every page of the area as (url, status, html)."""
    e = pytest.estate
    seen = []
    for url in _pages(e):
        response = client.get(url, headers=headers)
        seen.append((url, response.status_code, response.get_data(as_text=True)))
    for k, (url, data) in enumerate(_wizard_posts(e)):
        form = client.get(url if "actions" not in url else f"/clusters/{e['cluster'].id}",
                          headers=headers).get_data(as_text=True)
        response = client.post(url, data={**data, "csrf_token": csrf_token_from(form)},
                               headers=headers)
        seen.append((f"POST {url} #{k}", response.status_code, response.get_data(as_text=True)))
    return seen


def _left(seen) -> dict[str, list[str]]:
    data = data_strings()
    return {url: left for url, _status, html in seen if (left := english_left(html, data))}


@pytest.fixture
def operator(app, estate, login):
    pytest.estate = estate
    client = app.test_client()
    assert login(client, "ops", factories.PASSWORD).status_code == 302
    return client


def test_every_workload_page_in_chinese_has_no_english_left_as_operator(operator):
    seen = _visit(operator, ZH)
    statuses = {url: status for url, status, _html in seen}
    assert statuses["/vms/999999"] == 404 and statuses["/vms/"] == 200
    assert statuses["POST /meshes/new #5"] == 422 and statuses["POST /webhooks/new #8"] == 422
    assert all(status in (200, 404, 409, 422) for status in statuses.values()), statuses
    assert _left(seen) == {}
    # The pages really are the ones described: a refusal, the reasons of invalid requests,
    # a plan that fits, the scale-down confirmation.
    pages = {url: html for url, _status, html in seen}
    assert "preview-refusal" in pages["POST /vms/new #0"]
    assert "preview-invalid" in pages["POST /vms/new #1"]
    assert "preview-ok" in pages["POST /vms/new #2"]
    assert 'id="preview-invalid"' in pages["POST /clusters/new #3"]
    assert "preview-ok" in pages["POST /clusters/new #4"]
    assert "workers-going" in pages[f"POST /clusters/{pytest.estate['cluster'].id}/actions #9"]


def test_the_same_pages_in_english_read_english(operator):
    seen = _visit(operator, EN)
    pages = {url: html for url, _s, html in seen}
    assert "Virtual machines" in pages["/vms/"]
    assert "Provisioning jobs" in pages[f"/vms/{pytest.estate['vm'].id}"]
    assert "Service meshes" in pages["/meshes/"]
    assert "Maintainer groups" in pages["/maintainers/groups/"]
    assert "Delivery log" in pages[f"/webhooks/{pytest.estate['hook'].id}"]
    assert "Placement plan" in pages["/clusters/new"]
    assert all(english_left(html, data_strings()) for _url, _s, html in seen if html.strip())


def test_a_tenant_admin_and_a_maintainer_read_their_pages_in_chinese(app, estate, login):
    pytest.estate = estate
    admin = app.test_client()
    assert login(admin, "admin1", factories.PASSWORD).status_code == 302
    urls = ["/vms/", f"/vms/{estate['vm'].id}", "/vms/new", "/clusters/",
            f"/clusters/{estate['cluster'].id}", "/clusters/new", "/webhooks/",
            f"/webhooks/{estate['hook'].id}", "/maintainers/", "/meshes/"]
    mei = app.test_client()
    assert login(mei, "mei", factories.PASSWORD).status_code == 302
    seen = [(u, *_get(admin, u)) for u in urls]
    seen += [(f"mei {u}", *_get(mei, u)) for u in
             ("/maintainers/my-assignments", f"/clusters/{estate['cluster'].id}",
              f"/vms/{estate['failed'].id}", "/maintainers/")]
    assert all(status in (200, 403) for _u, status, _h in seen), [(u, s) for u, s, _ in seen]
    assert _left([s for s in seen if s[1] == 200]) == {}


def _get(client, url):
    response = client.get(url, headers=ZH)
    return response.status_code, response.get_data(as_text=True)
