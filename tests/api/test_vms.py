"""VMs through the API: the same rules as the wizard, the same roles and tenant scoping."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import AuditEvent, ProvisionJob, VirtualMachine
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import assert_problem, vm_body


def vm_count() -> int:
    return db.session.scalar(select(func.count(VirtualMachine.id)))


def test_create_vm_places_it_and_answers_201_with_its_server(api, estate):
    response = api.post("/vms", estate.admin_a, vm_body(estate, count=2))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["total"] == 2
    names = sorted(vm["name"] for vm in body["items"])
    assert names == ["web-1", "web-2"]
    server_ids = {s.id for s in estate.servers}
    for vm in body["items"]:
        assert vm["baremetal_id"] in server_ids
        assert vm["status"] == "provisioning"
        assert vm["tenant_id"] == estate.tenant_a.id
        assert vm["cpu"] == 4
    assert response.headers["Location"].endswith(f"/api/v1/vms/{body['items'][0]['id']}")
    assert db.session.scalar(select(func.count(ProvisionJob.id))) == 2
    assert db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "place")) == 2
    assert counter_drift() == []


def test_get_and_list_vms(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    got = api.get(f"/vms/{created['id']}", estate.admin_a)
    assert got.status_code == 200 and got.get_json()["name"] == "web"
    page = api.get("/vms?status=provisioning&limit=1", estate.operator).get_json()
    assert page["total"] == 1 and page["items"][0]["id"] == created["id"]
    assert api.get("/vms?status=active", estate.operator).get_json()["total"] == 0
    assert api.get("/vms?q=we", estate.operator).get_json()["total"] == 1
    assert api.get(f"/vms?tenant_id={estate.tenant_b.id}", estate.operator).get_json() == {
        "items": [], "total": 0}


def test_paging_counts_every_row(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate, count=4))
    first = api.get("/vms?limit=3&offset=0&sort=name", estate.admin_a).get_json()
    second = api.get("/vms?limit=3&offset=3&sort=name", estate.admin_a).get_json()
    assert first["total"] == second["total"] == 4
    assert [v["name"] for v in first["items"] + second["items"]] == [
        "web-1", "web-2", "web-3", "web-4"]


def test_without_a_token_every_vm_operation_is_401(api, estate):
    for method, path in (("GET", "/vms"), ("GET", "/vms/1"), ("POST", "/vms"),
                         ("DELETE", "/vms/1"), ("POST", "/vms/1/retry")):
        response = api.call(method, path, json={} if method == "POST" else None)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(api.get("/vms", "rp_not-a-real-token"), 401, "unauthorized")


def test_a_session_cookie_is_not_a_token(api, estate, login):
    operator = f.user(operator=True)
    db.session.commit()
    log_in = login(api.client, operator.username, f.PASSWORD)
    assert log_in.status_code == 302
    assert_problem(api.get("/vms"), 401, "unauthorized")


def test_revoked_token_is_401(api, estate):
    tokens = api.get("/tokens", estate.admin_a).get_json()["items"]
    assert api.delete(f"/tokens/{tokens[0]['id']}", estate.admin_a).status_code == 200
    assert_problem(api.get("/vms", estate.admin_a), 401, "unauthorized")


def test_another_tenants_vm_is_not_found(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    for method, path in (("GET", f"/vms/{created['id']}"), ("DELETE", f"/vms/{created['id']}"),
                         ("POST", f"/vms/{created['id']}/retry")):
        assert_problem(api.call(method, path, estate.admin_b), 404, "not_found")
    assert api.get("/vms", estate.admin_b).get_json()["total"] == 0
    assert api.get(f"/vms?tenant_id={estate.tenant_a.id}", estate.admin_b).get_json()[
        "total"] == 0
    assert db.session.get(VirtualMachine, created["id"]).status == "provisioning"


def test_a_tenant_admin_cannot_create_for_another_tenant(api, estate):
    response = api.post("/vms", estate.admin_b, vm_body(estate))  # tenant A's id
    body = assert_problem(response, 422, "validation_error")
    assert "tenant_id" in body["errors"]
    assert vm_count() == 0


def test_roles_that_may_not_create_get_403(api, estate):
    for token in (estate.maintainer, estate.nobody):
        assert_problem(api.post("/vms", token, vm_body(estate)), 403, "forbidden")
    assert_problem(api.get("/vms", estate.nobody), 403, "forbidden")
    assert api.get("/vms", estate.maintainer).status_code == 200  # maintainers read
    assert vm_count() == 0


def test_validation_errors_name_each_field_and_change_nothing(api, estate):
    response = api.post("/vms", estate.admin_a, {"name": "bad name!", "tenant_id": 0,
                                                "count": 99, "spec_id": "x", "extra": 1})
    body = assert_problem(response, 422, "validation_error")
    assert {"tenant_id", "count", "spec_id", "group_id", "extra"} <= set(body["errors"])
    # pydantic passes; the service refuses (the same messages as the wizard's)
    response = api.post("/vms", estate.admin_a, vm_body(estate, name="bad name!"))
    body = assert_problem(response, 422, "validation_error")
    assert "no spaces" in body["errors"]["name"]
    response = api.post("/vms", estate.admin_a, vm_body(estate, group_id=estate.other_group.id))
    assert "no quota" in assert_problem(response, 422, "validation_error")["errors"]["group_id"]
    assert_problem(api.call("POST", "/vms", estate.admin_a, data="not json",
                            content_type="application/json"), 422, "validation_error")
    assert_problem(api.get("/vms?limit=0", estate.admin_a), 422, "validation_error")
    assert_problem(api.get("/vms?status=sleeping", estate.admin_a), 422, "validation_error")
    assert vm_count() == 0
    assert counter_drift() == []


def test_quota_refusal_is_409_with_the_wizards_numbers(api, estate):
    response = api.post("/vms", estate.admin_a, vm_body(estate, count=5))  # 20 CPU > 16
    body = assert_problem(response, 409, "quota_exceeded")
    assert body["details"]["dimension"] == "cpu"
    assert body["details"]["requested"] == 20 and body["details"]["headroom"] == 16
    assert "Quota exceeded" in body["detail"]
    assert vm_count() == 0


def test_capacity_refusal_counts_servers_per_reason(api, estate):
    big = f.flavor(cpu=30, memory=8, storage=50)
    db.session.commit()
    body = vm_body(estate, spec_id=big.id, count=3, tenant_id=estate.tenant_b.id)
    problem = assert_problem(api.post("/vms", estate.admin_b, body), 409,
                             "insufficient_capacity")
    assert sum(problem["details"]["reasons"].values()) == 2
    assert vm_count() == 0


def test_duplicate_name_is_refused(api, estate):
    assert api.post("/vms", estate.admin_a, vm_body(estate)).status_code == 201
    body = assert_problem(api.post("/vms", estate.admin_a, vm_body(estate)), 422,
                          "validation_error")
    assert "already has a VM named web" in body["errors"]["name"]


def test_delete_vm_marks_it_deleting_and_queues_a_job(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    (job,) = jobs.claim("agent-1")
    jobs.complete(job.id, "agent-1", True, "built")
    response = api.delete(f"/vms/{created['id']}", estate.admin_a)
    assert response.status_code == 202
    assert response.get_json()["status"] == "deleting"
    again = api.delete(f"/vms/{created['id']}", estate.admin_a)
    assert "already deleting" in assert_problem(again, 409, "conflict")["detail"]
    jobs_of_vm = db.session.execute(
        select(ProvisionJob.action, ProvisionJob.status).order_by(ProvisionJob.id)).all()
    assert jobs_of_vm == [("create", "succeeded"), ("delete", "queued")]


def test_delete_before_an_agent_took_the_create_cancels_it(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    response = api.delete(f"/vms/{created['id']}", estate.admin_a)
    assert response.status_code == 202 and response.get_json()["status"] == "deleted"
    jobs_of_vm = db.session.execute(
        select(ProvisionJob.action, ProvisionJob.status).order_by(ProvisionJob.id)).all()
    assert jobs_of_vm == [("create", "cancelled")]
    assert jobs.claim("agent-1") == []
    assert counter_drift() == []


def test_retry_only_a_failed_vm(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    assert_problem(api.post(f"/vms/{created['id']}/retry", estate.admin_a), 409, "conflict")
    (job,) = jobs.claim("agent-1")
    jobs.complete(job.id, "agent-1", False, "disk on fire")
    response = api.post(f"/vms/{created['id']}/retry", estate.admin_a)
    assert response.status_code == 202 and response.get_json()["status"] == "provisioning"
    assert counter_drift() == []
