"""Clusters through the API: created all or nothing, scaled, given plugins, meshes and
bastions, deleted — the cluster wizard's rules, the same tenant scoping."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import K8sCluster, VirtualMachine
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import assert_problem, vm_body


def cluster_body(estate, **kw) -> dict:
    return {"name": "k1", "tenant_id": estate.tenant_b.id, "group_id": estate.group.id,
            "version": "1.31.2", "control_planes": 1,
            "control_plane_flavor_id": estate.flavor.id, "workers": 2,
            "worker_flavor_id": estate.flavor.id,
            "plugins": [{"name": "calico"}], **kw}


@pytest.fixture
def cluster(api, estate) -> dict:
    response = api.post("/clusters", estate.admin_b, cluster_body(estate))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_cluster_places_every_node(api, estate, cluster):
    assert cluster["status"] == "provisioning"
    assert sorted(n["role"] for n in cluster["nodes"]) == ["control-plane", "worker", "worker"]
    assert all(n["baremetal_id"] for n in cluster["nodes"])
    assert [p["name"] for p in cluster["plugins"]] == ["calico"]
    assert cluster["plugins"][0]["version"] == "3.28.1"  # the catalogue's default
    got = api.get(f"/clusters/{cluster['id']}", estate.admin_b).get_json()
    assert got["nodes"] == cluster["nodes"]
    assert api.get("/clusters?status=provisioning", estate.admin_b).get_json()["total"] == 1
    assert counter_drift() == []


def test_another_tenants_cluster_is_not_found(api, estate, cluster):
    cid = cluster["id"]
    for method, path in (("GET", f"/clusters/{cid}"), ("DELETE", f"/clusters/{cid}"),
                         ("POST", f"/clusters/{cid}/scale"), ("GET", f"/clusters/{cid}/plugins"),
                         ("POST", f"/clusters/{cid}/retry"),
                         ("GET", f"/clusters/{cid}/bastions"),
                         ("GET", f"/clusters/{cid}/service-meshes")):
        body = {"workers": 1} if path.endswith("scale") else None
        assert_problem(api.call(method, path, estate.admin_a, json=body), 404, "not_found")
    assert api.get("/clusters", estate.admin_a).get_json()["total"] == 0
    assert db.session.get(K8sCluster, cid).status == "provisioning"


def test_cluster_validation_and_refusals_change_nothing(api, estate):
    bad = api.post("/clusters", estate.admin_b, cluster_body(
        estate, version="0.1", plugins=[{"name": "calico"}, {"name": "cilium"}]))
    errors = assert_problem(bad, 422, "validation_error")["errors"]
    assert {"version", "plugins"} <= set(errors)
    huge = f.flavor(cpu=30, memory=8, storage=10)
    db.session.commit()
    refused = api.post("/clusters", estate.admin_b, cluster_body(
        estate, control_planes=3, control_plane_flavor_id=huge.id))
    body = assert_problem(refused, 409, "insufficient_capacity")
    assert body["details"]["reasons"]
    assert db.session.scalar(select(func.count(K8sCluster.id))) == 0
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 0
    assert counter_drift() == []


def test_scale_up_and_down(api, estate, cluster):
    up = api.post(f"/clusters/{cluster['id']}/scale", estate.admin_b, {"workers": 4})
    assert up.status_code == 202
    assert sum(n["role"] == "worker" for n in up.get_json()["nodes"]) == 4
    down = api.post(f"/clusters/{cluster['id']}/scale", estate.admin_b, {"workers": 1})
    workers = [n for n in down.get_json()["nodes"] if n["role"] == "worker"]
    # No agent had claimed their create jobs: cancelled, deleted and released at once.
    assert len(workers) == 1
    assert counter_drift() == []
    same = api.post(f"/clusters/{cluster['id']}/scale", estate.admin_b, {"workers": 1})
    assert_problem(same, 409, "conflict")
    assert counter_drift() == []


def test_plugins_meshes_and_bastions(api, estate, cluster):
    cid = cluster["id"]
    added = api.post(f"/clusters/{cid}/plugins", estate.admin_b, {"name": "prometheus"})
    assert added.status_code == 201
    plugin_id = added.get_json()["id"]
    changed = api.patch(f"/clusters/{cid}/plugins/{plugin_id}", estate.admin_b,
                        {"version": "2.55.0", "status": "inactive"})
    assert changed.get_json()["version"] == "2.55.0"
    second_cni = api.post(f"/clusters/{cid}/plugins", estate.admin_b, {"name": "cilium"})
    assert "One network plugin" in assert_problem(second_cni, 409, "conflict")["detail"]
    assert api.delete(f"/clusters/{cid}/plugins/{plugin_id}", estate.admin_b).status_code == 204
    assert_problem(api.delete(f"/clusters/{cid}/plugins/{plugin_id}", estate.admin_b), 404,
                   "not_found")

    mesh, other_mesh = f.mesh(), f.mesh()
    db.session.commit()
    link = api.post(f"/clusters/{cid}/service-meshes", estate.admin_b,
                    {"service_mesh_id": mesh.id, "role": "primary"})
    assert link.status_code == 201
    second = api.post(f"/clusters/{cid}/service-meshes", estate.admin_b,
                      {"service_mesh_id": other_mesh.id, "role": "primary"})
    assert "primary mesh" in assert_problem(second, 409, "conflict")["detail"]
    link_id = link.get_json()["id"]
    assert api.patch(f"/clusters/{cid}/service-meshes/{link_id}", estate.admin_b,
                     {"role": "secondary"}).get_json()["role"] == "secondary"
    assert api.delete(f"/clusters/{cid}/service-meshes/{link_id}",
                      estate.admin_b).status_code == 204
    missing = api.post(f"/clusters/{cid}/service-meshes", estate.admin_b,
                       {"service_mesh_id": 999})
    assert "service_mesh_id" in assert_problem(missing, 422, "validation_error")["errors"]

    vm = api.post("/vms", estate.admin_b, vm_body(estate, tenant_id=estate.tenant_b.id,
                                                  name="jump")).get_json()["items"][0]
    other_tenant_vm = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    bastion = api.post(f"/clusters/{cid}/bastions", estate.admin_b, {"vm_id": vm["id"]})
    assert bastion.status_code == 201
    foreign = api.post(f"/clusters/{cid}/bastions", estate.admin_b,
                       {"vm_id": other_tenant_vm["id"]})
    assert "vm_id" in assert_problem(foreign, 422, "validation_error")["errors"]
    listed = api.get(f"/clusters/{cid}/bastions", estate.admin_b).get_json()
    assert [b["vm_id"] for b in listed["items"]] == [vm["id"]]
    assert api.delete(f"/clusters/{cid}/bastions/{bastion.get_json()['id']}",
                      estate.admin_b).status_code == 204


def test_status_is_for_operators_and_assigned_maintainers(api, estate, cluster):
    cid = cluster["id"]
    db.session.get(K8sCluster, cid).status = "active"
    db.session.commit()
    assert_problem(api.patch(f"/clusters/{cid}", estate.admin_b, {"status": "maintenance"}),
                   403, "forbidden")
    assert_problem(api.patch(f"/clusters/{cid}", estate.maintainer, {"status": "maintenance"}),
                   404, "not_found")  # not assigned to this cluster: not even visible
    response = api.patch(f"/clusters/{cid}", estate.operator, {"status": "maintenance"})
    assert response.get_json()["status"] == "maintenance"


def test_delete_cluster_before_any_agent_took_it(api, estate, cluster):
    response = api.delete(f"/clusters/{cluster['id']}", estate.admin_b)
    assert response.status_code == 202
    assert response.get_json()["status"] == "deleted"  # every create cancelled
    assert counter_drift() == []


def test_delete_cluster(api, estate, cluster):
    for job in jobs.claim("agent", limit=10):
        jobs.complete(job.id, "agent", True, "built")
    response = api.delete(f"/clusters/{cluster['id']}", estate.admin_b)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "deleting"
    assert all(n["status"] == "deleting" for n in body["nodes"])
    assert_problem(api.delete(f"/clusters/{cluster['id']}", estate.admin_b), 409, "conflict")
    node = body["nodes"][0]["id"]
    assert_problem(api.delete(f"/vms/{node}", estate.admin_b), 409, "conflict")
