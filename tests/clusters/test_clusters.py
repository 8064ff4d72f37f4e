"""Kubernetes clusters: requests, spread, rules, lifecycle, and the pages that drive them."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.clusters import service
from portal.extensions import db
from portal.models import (
    BastionClusterAssociation,
    K8sCluster,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    VirtualMachine,
)
from portal.provisioning import jobs
from portal.scheduler.reservation import PlacementRefused
from portal.vms.service import RequestInvalid
from tests import factories as f
from tests.conftest import csrf_token_from, log_in


def estate(racks=3, per_rack=2, cpu=32, quota=None):
    grp = f.group(name=f"g{f.n()}")
    for _ in range(racks):
        rack = f.rack()
        for u in range(per_rack):
            f.server(rack=rack, group=grp, rack_unit=u * 2 + 1, cpu=cpu, memory=128, storage=2000)
    tenant = f.tenant()
    f.quota(tenant, grp, **(quota or {}))
    flavor = f.flavor(cpu=4, memory=8, storage=50)
    mesh, other_mesh = f.mesh(), f.mesh()
    op = f.user(operator=True)
    db.session.commit()
    return SimpleNamespace(
        group=grp, tenant=tenant, flavor=flavor, mesh=mesh, other_mesh=other_mesh, op=op
    )


def request(e, **kw):
    args = dict(
        tenant_id=e.tenant.id,
        group_id=e.group.id,
        name=f"c{f.n()}",
        version="1.31.2",
        control_planes=3,
        control_plane_flavor_id=e.flavor.id,
        workers=2,
        worker_flavor_id=e.flavor.id,
        plugins=[("calico", ""), ("prometheus", "")],
    )
    args.update(kw)
    return service.build_request(e.op, **args)


def finish_all(ok=True, message=""):
    while True:
        claimed = jobs.claim("test-agent", limit=50)
        if not claimed:
            return
        for job in claimed:
            jobs.complete(job.id, "test-agent", ok, message)


def count(model):
    return db.session.scalar(select(func.count(model.id)))


# --- creation, spread ------------------------------------------------------------------------


def test_cluster_is_created_with_its_parts_and_becomes_active(app):
    e = estate()
    cluster = service.create_cluster(
        request(
            e,
            primary_mesh_id=e.mesh.id,
            secondary_mesh_id=e.other_mesh.id,
            bastion="new",
            bastion_flavor_id=e.flavor.id,
        ),
        e.op,
    )
    assert cluster.status == "provisioning"
    nodes = db.session.scalars(
        select(VirtualMachine).where(VirtualMachine.k8s_cluster_id == cluster.id)
    ).all()
    assert Counter(n.role for n in nodes) == {"control-plane": 3, "worker": 2}
    assert {p.name: p.version for p in cluster.plugins} == {
        "calico": "3.28.1",
        "prometheus": "2.54.1",
    }
    assert {(link.service_mesh_id, link.role) for link in cluster.mesh_links} == {
        (e.mesh.id, "primary"),
        (e.other_mesh.id, "secondary"),
    }
    (bastion_link,) = cluster.bastion_links
    assert bastion_link.vm.role == "bastion" and bastion_link.vm.k8s_cluster_id is None
    finish_all()
    db.session.expire_all()
    assert cluster.status == "active"
    assert counter_drift() == []


def test_control_planes_spread_over_racks_and_the_spread_reported_is_true(app):
    e = estate(racks=3, per_rack=2)
    cluster = service.create_cluster(request(e), e.op)
    cps = [vm for vm in service.cluster_nodes(cluster) if vm.role == "control-plane"]
    assert len({vm.baremetal_id for vm in cps}) == 3
    assert len({vm.baremetal.rack_id for vm in cps}) == 3
    preview = service.preview_cluster(request(e))
    assert preview.result.spread == "3 control planes on 3 racks; 2 workers on 2 servers"


def test_with_two_racks_control_planes_still_take_distinct_servers(app):
    e = estate(racks=2, per_rack=2)
    preview = service.preview_cluster(request(e))
    assert preview.ok
    cps = [host for node, host in preview.chosen() if node.role == "control-plane"]
    assert len({h.id for h in cps}) == 3 and len({h.rack for h in cps}) == 2
    assert preview.result.spread == (
        "3 control planes on 3 servers, 2 racks — a rack failure would take down 2 of 3; "
        "2 workers on 2 servers"
    )


def test_five_control_planes_need_five_servers(app):
    e = estate(racks=1, per_rack=3)
    preview = service.preview_cluster(request(e, control_planes=5))
    assert not preview.ok and preview.result.code == "insufficient_capacity"
    assert "5 control planes need 5 distinct servers" in preview.result.message


def test_refused_cluster_reserves_nothing(app):
    e = estate(quota={"cpu_limit": 16})
    with pytest.raises(PlacementRefused) as refused:
        service.create_cluster(request(e), e.op)
    assert refused.value.refusal.code == "quota_exceeded"
    assert count(K8sCluster) == 0 and count(VirtualMachine) == 0
    assert count(K8sClusterPlugin) == 0
    assert counter_drift() == []


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"control_planes": 2}, "control_planes", "1, 3 or 5"),
        ({"workers": 201}, "workers", "0 to 200"),
        ({"workers": -1}, "workers", "0 to 200"),
        ({"version": "1.20.0"}, "version", "supported version"),
        ({"plugins": [("weave", "")]}, "plugins", "Unknown plugin 'weave'"),
        ({"plugins": [("calico", "latest")]}, "plugins", "not a version"),
        ({"plugins": [("calico", ""), ("cilium", "")]}, "plugins", "One network plugin"),
        ({"name": ""}, "name", "Give the cluster a name"),
        ({"name": "x" * 41}, "name", "at most 40"),
        ({"secondary_mesh_id": "other"}, "secondary_mesh_id", "primary mesh before"),
        ({"primary_mesh_id": 99999}, "primary_mesh_id", "existing service mesh"),
        ({"bastion": "existing", "bastion_vm_id": "foreign"}, "bastion_vm_id", "same tenant"),
        ({"bastion": "new"}, "bastion_flavor_id", "Choose a flavor"),
    ],
)
def test_bad_requests_are_refused_clearly(app, overrides, field, message):
    e = estate()
    if overrides.get("secondary_mesh_id") == "other":
        overrides["secondary_mesh_id"] = e.other_mesh.id
    if overrides.get("bastion_vm_id") == "foreign":
        stranger = f.tenant()
        overrides["bastion_vm_id"] = f.vm(stranger, f.server(group=e.group), e.flavor).id
        db.session.commit()
    with pytest.raises(RequestInvalid) as invalid:
        request(e, **overrides)
    assert message in invalid.value.errors[field]


def test_name_unique_per_tenant(app):
    e = estate()
    service.create_cluster(request(e, name="prod"), e.op)
    with pytest.raises(RequestInvalid, match="already has a cluster named prod"):
        request(e, name="prod")


# --- plugins, meshes, bastions ----------------------------------------------------------------


def test_plugin_rules(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    with pytest.raises(service.ClusterError, match="already installed"):
        service.add_plugin(cluster, "calico", "", e.op)
    with pytest.raises(service.ClusterError, match="One network plugin"):
        service.add_plugin(cluster, "cilium", "", e.op)
    with pytest.raises(service.ClusterError, match="Unknown plugin"):
        service.add_plugin(cluster, "weave", "", e.op)
    plugin = service.add_plugin(cluster, "longhorn", "", e.op)
    assert plugin.version == "1.7.1"
    with pytest.raises(service.ClusterError, match="not a version"):
        service.update_plugin(cluster, plugin.id, e.op, version="one")
    service.update_plugin(cluster, plugin.id, e.op, version="1.7.2", status="error")
    assert (plugin.version, plugin.status) == ("1.7.2", "error")
    service.remove_plugin(cluster, plugin.id, e.op)
    assert sorted(p.name for p in cluster.plugins) == ["calico", "prometheus"]


def test_one_primary_mesh(app):
    e = estate()
    cluster = service.create_cluster(request(e, primary_mesh_id=e.mesh.id), e.op)
    with pytest.raises(service.ClusterError, match="already has .* as its primary mesh"):
        service.bind_mesh(cluster, e.other_mesh.id, "primary", e.op)
    link = service.bind_mesh(cluster, e.other_mesh.id, "secondary", e.op)
    with pytest.raises(service.ClusterError, match="primary mesh"):
        service.change_mesh_role(cluster, link.id, "primary", e.op)
    primary = next(ln for ln in cluster.mesh_links if ln.role == "primary")
    service.change_mesh_role(cluster, primary.id, "secondary", e.op)
    service.change_mesh_role(cluster, link.id, "primary", e.op)
    assert (
        db.session.scalar(
            select(func.count(K8sClusterToServiceMesh.id)).where(
                K8sClusterToServiceMesh.role == "primary"
            )
        )
        == 1
    )


def test_bastion_must_be_of_the_same_tenant(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    server = f.server(group=e.group)
    mine, foreign = f.vm(e.tenant, server, e.flavor), f.vm(f.tenant(), server, e.flavor)
    db.session.commit()
    with pytest.raises(service.ClusterError, match="Choose a live VM of"):
        service.add_bastion(cluster, foreign.id, e.op)
    link = service.add_bastion(cluster, mine.id, e.op)
    with pytest.raises(service.ClusterError, match="already a bastion"):
        service.add_bastion(cluster, mine.id, e.op)
    service.remove_bastion(cluster, link.id, e.op)
    assert count(BastionClusterAssociation) == 0


# --- lifecycle ------------------------------------------------------------------------------


def test_failed_node_error_then_retry_then_active(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    claimed = jobs.claim("a", limit=10)
    for i, job in enumerate(claimed):
        jobs.complete(job.id, "a", i != 1, "" if i != 1 else "disk attach timeout")
    db.session.expire_all()
    assert cluster.status == "error"
    failed = [vm for vm in service.cluster_nodes(cluster) if vm.status == "error"]
    assert [vm.status_message for vm in failed] == ["disk attach timeout"]
    assert counter_drift() == []
    service.retry_failed_nodes(cluster, e.op)
    db.session.expire_all()
    assert cluster.status == "provisioning"
    finish_all()
    db.session.expire_all()
    assert cluster.status == "active"
    assert counter_drift() == []


def test_scale_up_and_down_keep_counters_exact(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=2), e.op)
    finish_all()
    added = service.scale_workers(cluster, 5, e.op)
    assert sorted(vm.name for vm in added) == [f"{cluster.name}-worker-{i}" for i in (3, 4, 5)]
    finish_all()
    assert counter_drift() == []
    workers = [vm for vm in service.cluster_nodes(cluster) if vm.role == "worker"]
    chosen = [workers[0].id]
    with pytest.raises(service.ClusterError, match="removes 3 workers; 1 were chosen"):
        service.scale_workers(cluster, 2, e.op, chosen)
    removed = service.scale_workers(cluster, 4, e.op, chosen)
    assert [vm.id for vm in removed] == chosen
    assert db.session.get(VirtualMachine, chosen[0]).status == "deleting"
    finish_all()
    db.session.expire_all()
    assert db.session.get(VirtualMachine, chosen[0]).status == "deleted"
    assert len([vm for vm in service.live_nodes(cluster) if vm.role == "worker"]) == 4
    assert cluster.status == "active"
    assert counter_drift() == []


def test_delete_releases_everything(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    finish_all()
    service.delete_cluster(cluster, e.op)
    assert cluster.status == "deleting"
    finish_all()
    db.session.expire_all()
    assert cluster.status == "deleted"
    assert (
        db.session.scalar(
            select(func.count(VirtualMachine.id)).where(VirtualMachine.status != "deleted")
        )
        == 0
    )
    assert sum(s.available_cpu for s in e.group.baremetals) == e.group.total_cpu
    assert counter_drift() == []


def test_status_by_operator_and_assigned_maintainer_only(app):
    from portal.models import ResourceMaintainer

    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    finish_all()
    person, stranger = f.maintainer(), f.maintainer()
    db.session.add(
        ResourceMaintainer(
            resource_type="k8s_cluster", resource_id=cluster.id, maintainer_id=person.id
        )
    )
    on_call, other = (
        f.user(maintainer_account=person.account),
        f.user(maintainer_account=stranger.account),
    )
    db.session.commit()
    assert service.may_set_status(cluster, on_call)
    assert not service.may_set_status(cluster, other)
    service.set_status(cluster, "maintenance", on_call)
    assert cluster.status == "maintenance"
    with pytest.raises(service.ClusterError, match="one of active, maintenance, offline"):
        service.set_status(cluster, "error", e.op)


# --- concurrency on PostgreSQL ------------------------------------------------------------------


def test_clusters_racing_vms_for_the_last_capacity(pg_app):
    """Never a half-placed cluster, never an overshoot, counters exact."""
    from portal.models import BaremetalGroup, Tenant
    from portal.scheduler.reservation import NodeSpec, reserve

    e = estate(racks=3, per_rack=2, cpu=16)  # 96 CPU in all; a cluster takes 5 × 4 = 20
    ids = SimpleNamespace(tenant=e.tenant.id, group=e.group.id, flavor=e.flavor.id, op=e.op.id)
    start = threading.Event()
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def cluster_worker(n):
        with pg_app.app_context():
            start.wait()
            from portal.models import User

            user = db.session.get(User, ids.op)
            for i in range(3):
                try:
                    req = service.build_request(
                        user,
                        tenant_id=ids.tenant,
                        group_id=ids.group,
                        name=f"k{n}x{i}",
                        version="1.31.2",
                        control_planes=3,
                        control_plane_flavor_id=ids.flavor,
                        workers=2,
                        worker_flavor_id=ids.flavor,
                    )
                    service.create_cluster(req, user)
                    result = "cluster"
                except PlacementRefused:
                    result = "cluster refused"
                with lock:
                    outcomes[result] += 1
            db.session.remove()

    def vm_worker(n):
        with pg_app.app_context():
            start.wait()
            for i in range(6):
                tenant = db.session.get(Tenant, ids.tenant)
                group = db.session.get(BaremetalGroup, ids.group)
                from portal.models import VirtualMachineSpecification

                flavor = db.session.get(VirtualMachineSpecification, ids.flavor)
                try:
                    reserve(tenant, group, [NodeSpec(f"v{n}x{i}", "standalone", flavor)], user=None)
                    result = "vm"
                except PlacementRefused:
                    result = "vm refused"
                with lock:
                    outcomes[result] += 1
            db.session.remove()

    threads = [threading.Thread(target=cluster_worker, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=vm_worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=180)
    db.session.rollback()
    assert sum(outcomes.values()) == 6 * 3 + 6 * 6, outcomes
    placed_cpu = outcomes["cluster"] * 20 + outcomes["vm"] * 4
    assert placed_cpu == db.session.scalar(select(func.sum(VirtualMachine.cpu)))
    assert placed_cpu <= 96
    assert 96 - placed_cpu < 20 or outcomes["vm refused"] == 0  # refusals only when full
    for cluster in db.session.scalars(select(K8sCluster)):
        assert len(service.cluster_nodes(cluster)) == 5  # never half placed
    assert counter_drift() == []


# --- pages ----------------------------------------------------------------------------------


def test_wizard_preview_and_create_through_the_pages(app):
    e = estate()
    f.user("ta", tenants=(e.tenant.name,))
    db.session.commit()
    client = app.test_client()
    log_in(client, "ta", f.PASSWORD)
    token = csrf_token_from(client.get("/clusters/new").get_data(as_text=True))
    data = {
        "csrf_token": token,
        "tenant_id": e.tenant.id,
        "group_id": e.group.id,
        "name": "web",
        "version": "1.31.2",
        "control_planes": 3,
        "control_plane_flavor_id": e.flavor.id,
        "workers": 2,
        "worker_flavor_id": e.flavor.id,
        "plugins": ["calico"],
        "version_calico": "3.28.1",
        "primary_mesh_id": e.mesh.id,
        "bastion": "none",
        "strategy": "best_fit",
    }
    html = client.post("/clusters/preview", data=data, headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "<html" not in html and "3 control planes on 3 racks" in html
    bad = client.post("/clusters/new", data={**data, "action": "create", "control_planes": 4})
    assert "1, 3 or 5" in bad.get_data(as_text=True) and count(K8sCluster) == 0
    response = client.post("/clusters/new", data={**data, "action": "create"})
    cluster = db.session.scalar(select(K8sCluster))
    assert response.headers["Location"] == f"/clusters/{cluster.id}"
    page = client.get(f"/clusters/{cluster.id}").get_data(as_text=True)
    assert "every 2s" in page and "web-cp-1" in page
    response = client.post(
        f"/clusters/{cluster.id}/actions",
        data={"csrf_token": token, "op": "add_plugin", "name": "cilium"},
    )
    assert "One network plugin" in client.get(response.headers["Location"]).get_data(as_text=True)
