"""Tenants, quotas, groups as tenant admins see them, placement previews, the account."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, BaremetalGroupTenantQuota, Tenant, VirtualMachine
from tests.api.conftest import assert_problem, vm_body


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_tenant_admins_see_their_own_tenants_only(api, estate):
    page = api.get("/tenants", estate.admin_a).get_json()
    assert [t["id"] for t in page["items"]] == [estate.tenant_a.id] and page["total"] == 1
    assert api.get(f"/tenants/{estate.tenant_a.id}", estate.admin_a).status_code == 200
    assert_problem(api.get(f"/tenants/{estate.tenant_b.id}", estate.admin_a), 404, "not_found")
    assert api.get("/tenants", estate.operator).get_json()["total"] == 2


def test_operator_creates_updates_and_deletes_a_tenant(api, estate):
    response = api.post("/tenants", estate.operator, {"name": "gamma", "contact": "ops@g"})
    assert response.status_code == 201
    tenant_id = response.get_json()["id"]
    changed = api.patch(f"/tenants/{tenant_id}", estate.operator, {"description": "new"})
    assert changed.get_json()["description"] == "new"
    assert changed.get_json()["contact"] == "ops@g"  # untouched fields stay
    assert api.delete(f"/tenants/{tenant_id}", estate.operator).status_code == 204
    assert db.session.get(Tenant, tenant_id) is None
    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "tenant", AuditEvent.object_id == tenant_id)).all()
    assert sorted(actions) == ["create", "delete", "update"]


def test_tenant_rules_refuse_and_change_nothing(api, estate):
    clash = api.post("/tenants", estate.operator, {"name": estate.tenant_a.name})
    assert "already exists" in assert_problem(clash, 422, "validation_error")["errors"]["name"]
    assert count(Tenant) == 2
    api.post("/vms", estate.admin_a, vm_body(estate))
    busy = api.delete(f"/tenants/{estate.tenant_a.id}", estate.operator)
    assert "still has 1 VM" in assert_problem(busy, 409, "conflict")["detail"]
    assert db.session.get(Tenant, estate.tenant_a.id) is not None


def test_quotas_with_usage_scoped_to_the_tenant(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate))
    page = api.get("/quotas", estate.admin_a).get_json()
    assert page["total"] == 1
    quota = page["items"][0]
    assert quota["usage"]["cpu"] == {"written": "16", "limit": 16, "used": 4, "remaining": 12}
    assert quota["usage"]["memory"]["limit"] is None
    assert_problem(api.get(f"/quotas/{estate.quota_b.id}", estate.admin_a), 404, "not_found")
    assert api.get(f"/quotas?group_id={estate.group.id}", estate.operator).get_json()[
        "total"] == 2


def test_operator_edits_quotas(api, estate):
    lowered = api.patch(f"/quotas/{estate.quota_a.id}", estate.operator, {"cpu_limit": 0})
    assert lowered.status_code == 200
    assert lowered.get_json()["cpu_limit"] == 0
    switched = api.patch(f"/quotas/{estate.quota_a.id}", estate.operator,
                         {"cpu_limit": None, "cpu_percent": 50})
    assert switched.get_json()["usage"]["cpu"]["limit"] == 32  # 50 % of 64
    created = api.post("/quotas", estate.operator, {"tenant_id": estate.tenant_a.id,
                                                     "group_id": estate.other_group.id,
                                                     "memory_limit": 100})
    assert created.status_code == 201
    assert api.delete(f"/quotas/{created.get_json()['id']}", estate.operator).status_code == 204


def test_quota_below_usage_warns(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate, count=2))
    response = api.patch(f"/quotas/{estate.quota_a.id}", estate.operator, {"cpu_limit": 4})
    assert response.status_code == 200
    assert "already uses 8" in response.get_json()["warnings"][0]


def test_quota_rules_refuse_and_change_nothing(api, estate):
    both = api.patch(f"/quotas/{estate.quota_a.id}", estate.operator, {"cpu_percent": 10})
    assert "not both" in assert_problem(both, 422, "validation_error")["errors"]["cpu_limit"]
    twice = api.post("/quotas", estate.operator, {"tenant_id": estate.tenant_a.id,
                                                   "group_id": estate.group.id})
    assert "already has a quota" in assert_problem(twice, 422, "validation_error")["detail"]
    db.session.refresh(estate.quota_a)
    assert (estate.quota_a.cpu_limit, estate.quota_a.cpu_percent) == (16, None)
    assert count(BaremetalGroupTenantQuota) == 2
    assert_problem(api.patch(f"/quotas/{estate.quota_a.id}", estate.admin_a, {"cpu_limit": 99}),
                   403, "forbidden")


def test_tenant_admins_see_groups_they_hold_quota_in(api, estate):
    page = api.get("/baremetal-groups", estate.admin_a).get_json()
    assert [g["id"] for g in page["items"]] == [estate.group.id]
    assert page["items"][0]["total_cpu"] == 64
    assert_problem(api.get(f"/baremetal-groups/{estate.other_group.id}", estate.admin_a),
                   404, "not_found")
    assert_problem(api.get("/baremetals", estate.admin_a), 403, "forbidden")


def test_preview_vm_shows_the_plan_and_reserves_nothing(api, estate):
    response = api.post("/placements/preview", estate.admin_a, {"kind": "vm", **vm_body(estate)})
    assert response.status_code == 200
    preview = response.get_json()
    assert preview["ok"] is True and preview["refusal"] is None
    assert preview["nodes"][0]["baremetal_id"] in {s.id for s in estate.servers}
    cpu = next(line for line in preview["quota"] if line["dimension"] == "cpu")
    assert cpu == {"dimension": "cpu", "used": 0, "request": 4, "limit": 16, "fits": True}
    assert count(VirtualMachine) == 0


def test_preview_refusal_carries_the_same_numbers_as_creating(api, estate):
    body = vm_body(estate, count=5)
    preview = api.post("/placements/preview", estate.admin_a, {"kind": "vm", **body}).get_json()
    created = api.post("/vms", estate.admin_a, body).get_json()
    assert preview["ok"] is False
    assert preview["refusal"]["code"] == created["code"] == "quota_exceeded"
    assert preview["refusal"]["details"] == created["details"]
    assert preview["refusal"]["message"] == created["detail"]
    assert preview["suggestions"] == created["suggestions"]


def test_preview_cluster(api, estate):
    body = {"kind": "cluster", "name": "k", "tenant_id": estate.tenant_b.id,
            "group_id": estate.group.id, "version": "1.31.2", "control_planes": 1,
            "control_plane_flavor_id": estate.flavor.id, "workers": 2,
            "worker_flavor_id": estate.flavor.id}
    preview = api.post("/placements/preview", estate.admin_b, body).get_json()
    assert preview["ok"] is True and len(preview["nodes"]) == 3
    assert [n["role"] for n in preview["nodes"]] == ["control-plane", "worker", "worker"]
    other = api.post("/placements/preview", estate.admin_a, body)  # not admin of B
    assert "tenant_id" in assert_problem(other, 422, "validation_error")["errors"]
    assert_problem(api.post("/placements/preview", estate.admin_a, {"kind": "rocket"}), 422,
                   "validation_error")


def test_me_and_my_tokens(api, estate):
    me = api.get("/me", estate.admin_a).get_json()
    assert me["roles"] == ["tenant_admin"] and me["tenant_ids"] == [estate.tenant_a.id]
    created = api.post("/tokens", estate.admin_a, {"name": "script", "scopes": ["read"]})
    assert created.status_code == 201
    secret = created.get_json()["token"]
    assert api.get("/me", secret).get_json()["id"] == me["id"]
    tokens = api.get("/tokens", estate.admin_a).get_json()
    assert {t["name"] for t in tokens["items"]} == {"test", "script"}
    assert all("token" not in t for t in tokens["items"])  # secrets are shown once
    others = api.get("/tokens", estate.admin_b).get_json()["items"]
    assert_problem(api.delete(f"/tokens/{others[0]['id']}", estate.admin_a), 404, "not_found")
    assert api.get("/me", estate.admin_b).status_code == 200
