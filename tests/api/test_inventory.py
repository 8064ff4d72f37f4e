"""Inventory, maintainers, jobs and audit through the API: operators write, staff read, and
the areas' own rules refuse bad changes without changing anything."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Baremetal,
    BaremetalGroup,
    Rack,
    ResourceMaintainer,
    ServiceMesh,
    VirtualMachineSpecification,
)
from tests.api.conftest import assert_problem, vm_body


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_racks(api, estate):
    created = api.post("/racks", estate.operator,
                       {"name": "r-new", "region": "r1", "dc": "dc1", "bgp_asn": 65001})
    assert created.status_code == 201
    rack_id = created.get_json()["id"]
    assert api.get(f"/racks/{rack_id}", estate.maintainer).get_json()["bgp_asn"] == 65001
    assert api.get("/racks?region=r1", estate.maintainer).get_json()["total"] == 2
    assert api.patch(f"/racks/{rack_id}", estate.operator,
                     {"height_u": 10}).get_json()["height_u"] == 10
    full = estate.servers[0].rack_id
    shrink = api.patch(f"/racks/{full}", estate.operator, {"height_u": 2})
    assert "stick out" in assert_problem(shrink, 422, "validation_error")["errors"]["height_u"]
    assert db.session.get(Rack, full).height_u == 42
    busy = api.delete(f"/racks/{full}", estate.operator)
    assert "still holds 2 servers" in assert_problem(busy, 409, "conflict")["detail"]
    assert api.delete(f"/racks/{rack_id}", estate.operator).status_code == 204
    assert_problem(api.get("/racks", estate.admin_a), 403, "forbidden")


def test_baremetals(api, estate):
    rack = estate.servers[0].rack_id
    created = api.post("/baremetals", estate.operator, {
        "name": "srv-new", "serial": "SN-NEW", "rack_id": rack, "rack_unit": 10,
        "group_id": estate.group.id, "total_cpu": 16, "total_memory": 64, "total_storage": 500})
    assert created.status_code == 201, created.get_json()
    server = created.get_json()
    assert server["region"] == "r1" and server["available_cpu"] == 16
    assert db.session.get(BaremetalGroup, estate.group.id).total_cpu == 64 + 16
    overlap = api.post("/baremetals", estate.operator, {
        "name": "srv-x", "serial": "SN-X", "rack_id": rack, "rack_unit": 10})
    assert "rack_unit" in assert_problem(overlap, 422, "validation_error")["errors"]
    page = api.get(f"/baremetals?group_id={estate.group.id}&sort=-name", estate.maintainer)
    assert page.get_json()["total"] == 3 and page.get_json()["items"][0]["name"] == "srv-new"
    moved = api.post(f"/baremetals/{server['id']}/move", estate.operator,
                     {"group_id": estate.other_group.id})
    assert moved.get_json()["group_id"] == estate.other_group.id
    assert counter_drift() == []
    assert api.delete(f"/baremetals/{server['id']}", estate.operator).status_code == 204
    assert counter_drift() == []


def test_server_with_vms_cannot_shrink_or_go(api, estate):
    vm = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    host = vm["baremetal_id"]
    shrink = api.patch(f"/baremetals/{host}", estate.operator, {"total_cpu": 1})
    assert "total_cpu" in assert_problem(shrink, 422, "validation_error")["errors"]
    assert_problem(api.delete(f"/baremetals/{host}", estate.operator), 409, "conflict")
    assert db.session.get(Baremetal, host).total_cpu == 32
    assert counter_drift() == []


def test_maintainers_set_status_of_assigned_servers_only(api, estate):
    server = estate.servers[0]
    denied = api.patch(f"/baremetals/{server.id}", estate.maintainer, {"status": "maintenance"})
    assert_problem(denied, 403, "forbidden")
    db.session.add(ResourceMaintainer(resource_type="baremetal", resource_id=server.id,
                                      maintainer_id=estate.maintainer_row.id))
    db.session.commit()
    allowed = api.patch(f"/baremetals/{server.id}", estate.maintainer, {"status": "maintenance"})
    assert allowed.get_json()["status"] == "maintenance"
    rename = api.patch(f"/baremetals/{server.id}", estate.maintainer, {"name": "mine"})
    assert_problem(rename, 403, "forbidden")


def test_baremetal_groups(api, estate):
    created = api.post("/baremetal-groups", estate.operator, {"name": "g-new",
                                                              "dimension": "geo:x"})
    assert created.status_code == 201
    gid = created.get_json()["id"]
    assert api.patch(f"/baremetal-groups/{gid}", estate.operator,
                     {"description": "d"}).get_json()["dimension"] == "geo:x"
    clash = api.post("/baremetal-groups", estate.operator, {"name": "g-new"})
    assert_problem(clash, 422, "validation_error")
    busy = api.delete(f"/baremetal-groups/{estate.group.id}", estate.operator)
    assert "still has 2 servers" in assert_problem(busy, 409, "conflict")["detail"]
    assert api.delete(f"/baremetal-groups/{gid}", estate.operator).status_code == 204
    assert count(BaremetalGroup) == 2


def test_vm_specs(api, estate):
    created = api.post("/vm-specs", estate.operator,
                       {"name": "Big-16C64G", "cpu": 16, "memory": 64, "storage": 200})
    assert created.status_code == 201
    sid = created.get_json()["id"]
    assert api.get("/vm-specs?is_active=true", estate.admin_a).get_json()["total"] == 2
    retired = api.patch(f"/vm-specs/{sid}", estate.operator, {"is_active": False})
    assert retired.get_json()["is_active"] is False
    assert api.get("/vm-specs?is_active=false", estate.admin_a).get_json()["total"] == 1
    used = api.post("/vms", estate.admin_a, vm_body(estate))
    assert used.status_code == 201
    in_use = api.delete(f"/vm-specs/{estate.flavor.id}", estate.operator)
    assert "retire it instead" in assert_problem(in_use, 409, "conflict")["detail"]
    assert api.delete(f"/vm-specs/{sid}", estate.operator).status_code == 204
    assert count(VirtualMachineSpecification) == 1
    assert_problem(api.post("/vm-specs", estate.operator, {"name": "x", "cpu": 0, "memory": 1,
                                                           "storage": 0}),
                   422, "validation_error")


def test_service_meshes(api, estate):
    created = api.post("/service-meshes", estate.operator,
                       {"name": "istio-a", "mesh_type": "istio", "version": "1.23.2"})
    assert created.status_code == 201
    mid = created.get_json()["id"]
    assert api.get("/service-meshes?mesh_type=istio", estate.maintainer).get_json()[
        "total"] == 1
    assert api.patch(f"/service-meshes/{mid}", estate.operator,
                     {"status": "inactive"}).get_json()["status"] == "inactive"
    assert_problem(api.get("/service-meshes", estate.admin_a), 403, "forbidden")
    assert api.delete(f"/service-meshes/{mid}", estate.operator).status_code == 204
    assert count(ServiceMesh) == 0


def test_maintainers_groups_and_assignments(api, estate):
    person = api.post("/maintainers", estate.operator,
                      {"name": "Lin", "account": "lin", "email": "lin@example.com"})
    assert person.status_code == 201
    pid = person.get_json()["id"]
    bad = api.post("/maintainers", estate.operator, {"name": "X", "account": "Has Space"})
    assert "account" in assert_problem(bad, 422, "validation_error")["errors"]
    team = api.post("/maintainer-groups", estate.operator, {"name": "SRE", "manager_id": pid})
    assert team.status_code == 201
    tid = team.get_json()["id"]
    assert team.get_json()["member_ids"] == [pid]  # the manager is a member
    added = api.post(f"/maintainer-groups/{tid}/members", estate.operator,
                     {"maintainer_id": estate.maintainer_row.id})
    assert sorted(added.get_json()["member_ids"]) == sorted([pid, estate.maintainer_row.id])
    manager_out = api.delete(f"/maintainer-groups/{tid}/members/{pid}", estate.operator)
    assert_problem(manager_out, 409, "conflict")

    body = {"resource_type": "tenant", "resource_id": estate.tenant_a.id,
            "maintainer_group_id": tid, "responsibility": "primary on-call"}
    assigned = api.post("/assignments", estate.operator, body)
    assert assigned.status_code == 201
    assert_problem(api.post("/assignments", estate.operator, body), 409, "conflict")
    both = api.post("/assignments", estate.operator, {**body, "maintainer_id": pid})
    assert_problem(both, 422, "validation_error")
    missing = api.post("/assignments", estate.operator, {**body, "resource_id": 999})
    assert_problem(missing, 422, "validation_error")
    assert count(ResourceMaintainer) == 1

    # Tenant admins read the assignments on their own tenant, not on another's.
    assert api.get("/assignments", estate.admin_a).get_json()["total"] == 1
    assert api.get("/assignments", estate.admin_b).get_json()["total"] == 0
    aid = assigned.get_json()["id"]
    assert_problem(api.get(f"/assignments/{aid}", estate.admin_b), 404, "not_found")
    assert_problem(api.get("/maintainers", estate.admin_a), 403, "forbidden")

    refused = api.delete(f"/maintainers/{pid}", estate.operator)
    assert "manages SRE" in assert_problem(refused, 409, "conflict")["detail"]
    assert api.delete(f"/assignments/{aid}", estate.operator).status_code == 204
    assert api.delete(f"/maintainers/{pid}?leave_groups_without_manager=true",
                      estate.operator).status_code == 204
    assert api.get(f"/maintainer-groups/{tid}", estate.maintainer).get_json()["manager_id"] \
        is None


def test_the_maintainer_groups_list_is_the_pages_listing(api, estate):
    """The API pages over the groups page's own declaration (portal/maintainers/lists.py):
    its search (names and descriptions), its sort columns, its 'managed' filter."""
    person = api.post("/maintainers", estate.operator, {"name": "Ana", "account": "ana"})
    pid = person.get_json()["id"]
    api.post("/maintainer-groups", estate.operator,
             {"name": "SRE", "manager_id": pid, "description": "on call"})
    api.post("/maintainer-groups", estate.operator, {"name": "Network"})

    def names(path):
        body = api.get(path, estate.maintainer).get_json()
        assert body["total"] == len(body["items"])
        return [group["name"] for group in body["items"]]

    assert names("/maintainer-groups") == ["Network", "SRE"]
    assert names("/maintainer-groups?sort=-members") == ["SRE", "Network"]
    assert names("/maintainer-groups?managed=false") == ["Network"]
    assert names("/maintainer-groups?q=call") == ["SRE"]  # the description, as on the page
    assert api.get("/maintainer-groups?managed=true", estate.maintainer).get_json()[
        "items"][0]["member_ids"] == [pid]
    assert_problem(api.get("/maintainer-groups?sort=nope", estate.maintainer), 422,
                   "validation_error")


def test_provision_jobs_for_operators(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate))
    assert_problem(api.post("/provision-jobs/claim", estate.admin_a, {"agent": "a"}), 403,
                   "forbidden")
    claimed = api.post("/provision-jobs/claim", estate.operator, {"agent": "a", "limit": 5})
    (job,) = claimed.get_json()["items"]
    assert job["vm_name"] == "web" and job["action"] == "create"
    assert api.post("/provision-jobs/claim", estate.operator, {"agent": "b"}).get_json()[
        "total"] == 0
    wrong = api.post(f"/provision-jobs/{job['id']}/complete", estate.operator,
                     {"agent": "b", "succeeded": True})
    assert_problem(wrong, 409, "conflict")
    done = api.post(f"/provision-jobs/{job['id']}/complete", estate.operator,
                    {"agent": "a", "succeeded": True, "message": "ok"})
    assert done.get_json()["status"] == "succeeded"
    assert api.get(f"/vms/{job['vm_id']}", estate.admin_a).get_json()["status"] == "active"
    assert api.get("/provision-jobs?status=succeeded", estate.operator).get_json()["total"] == 1
    assert_problem(api.post("/provision-jobs/999/complete", estate.operator,
                            {"agent": "a", "succeeded": True}), 404, "not_found")
    assert_problem(api.get("/provision-jobs", estate.maintainer), 403, "forbidden")


def test_audit_events_for_operators(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate))
    page = api.get("/audit-events?action=place", estate.operator).get_json()
    assert page["total"] == 1
    event = page["items"][0]
    assert event["object_type"] == "virtual_machine" and event["changes"]["status"]["to"] == \
        "provisioning"
    assert api.get(f"/audit-events/{event['id']}", estate.operator).get_json() == event
    assert api.get("/audit-events?from=2000-01-01&to=2000-01-02", estate.operator).get_json()[
        "total"] == 0
    assert_problem(api.get("/audit-events?from=yesterday", estate.operator), 422,
                   "validation_error")
    assert_problem(api.get("/audit-events", estate.admin_a), 403, "forbidden")
    assert count(AuditEvent) >= 1
