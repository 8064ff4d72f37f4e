"""The API of SPEC 8.5: /api/v1/vm-groups and /api/v1/scaling-policies, with simulate."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, ScalingDecision, VirtualMachine
from tests.api.conftest import Api, assert_problem, build_estate


@pytest.fixture
def api(app) -> Api:
    return Api(app.test_client())


@pytest.fixture
def world(app):
    return build_estate()


def group_body(world, **kw):
    return {"name": "web", "tenant_id": world.tenant_a.id, "group_id": world.group.id,
            "spec_id": world.flavor.id, "size": 2, **kw}


def test_create_places_every_member_spread_over_servers(api, world):
    answer = api.post("/vm-groups", world.admin_a, json=group_body(world))
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert answer.headers["Location"].endswith(f"/vm-groups/{body['id']}")
    assert body["size"] == 2 and body["status"] == "active" and body["anti_affinity"] == "soft"
    assert [m["name"] for m in body["members"]] == ["web-1", "web-2"]
    assert {m["status"] for m in body["members"]} == {"provisioning"}
    assert len({m["baremetal_id"] for m in body["members"]}) == 2  # two servers, one each
    listed = api.get("/vm-groups", world.admin_a).get_json()
    assert listed["total"] == 1 and listed["items"][0]["size"] == 2


def test_create_beyond_quota_places_nothing_and_explains(api, world):
    answer = api.post("/vm-groups", world.admin_a, json=group_body(world, size=5))
    body = assert_problem(answer, 409, "quota_exceeded")
    assert body["details"]["dimension"] == "cpu" and "16" in body["detail"]
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 0
    assert api.get("/vm-groups", world.admin_a).get_json()["total"] == 0


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"), ({"name": "x" * 59}, "name"), ({"size": 0}, "size"),
    ({"size": 101}, "size"), ({"size": True}, "size"), ({"spec_id": 99999}, "spec_id"),
    ({"group_id": 2**31}, "group_id"), ({"anti_affinity": "sometimes"}, "anti_affinity"),
    ({"name": "a\x00b"}, "name"), ({"extra": 1}, "extra"),
])
def test_bad_input_changes_nothing(api, world, change, field):
    answer = api.post("/vm-groups", world.admin_a, json=group_body(world, **change))
    body = assert_problem(answer, 422, "validation_error")
    assert any(key.startswith(field) for key in body["errors"]), body
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 0


def test_another_tenants_group_is_not_found(api, world):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    for call in (lambda: api.get(f"/vm-groups/{created['id']}", world.admin_b),
                 lambda: api.post(f"/vm-groups/{created['id']}/resize", world.admin_b,
                                  json={"size": 1}),
                 lambda: api.delete(f"/vm-groups/{created['id']}", world.admin_b)):
        assert_problem(call(), 404, "not_found")
    assert api.get("/vm-groups", world.admin_b).get_json()["total"] == 0
    # Nor may tenant B create a group in tenant A's name.
    answer = api.post("/vm-groups", world.admin_b, json=group_body(world, name="mine"))
    assert "tenant_id" in assert_problem(answer, 422, "validation_error")["errors"]


def test_resize_up_and_down_by_hand(api, world):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    up = api.post(f"/vm-groups/{created['id']}/resize", world.admin_a, json={"size": 3})
    assert up.status_code == 202 and up.get_json()["size"] == 3
    assert [m["name"] for m in up.get_json()["members"]] == ["web-1", "web-2", "web-3"]
    down = api.post(f"/vm-groups/{created['id']}/resize", world.admin_a, json={"size": 1})
    assert down.get_json()["size"] == 1
    # The members created last went first (their queued creates cancelled at once).
    names = {m["name"]: m["status"] for m in down.get_json()["members"]}
    assert names == {"web-1": "provisioning"}
    same = api.post(f"/vm-groups/{created['id']}/resize", world.admin_a, json={"size": 1})
    assert "already has 1 members" in assert_problem(same, 409, "conflict")["detail"]
    beyond = api.post(f"/vm-groups/{created['id']}/resize", world.admin_a, json={"size": 9})
    assert_problem(beyond, 409, "quota_exceeded")
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.object_type == "vm_group")) == 3


def test_a_member_is_deleted_through_its_group(api, world):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    member = created["members"][0]["id"]
    refused = api.delete(f"/vms/{member}", world.admin_a)
    assert "member of VM group web" in assert_problem(refused, 409, "conflict")["detail"]
    gone = api.delete(f"/vm-groups/{created['id']}", world.admin_a)
    assert gone.status_code == 202 and gone.get_json()["status"] == "deleted"
    assert gone.get_json()["members"] == []


def policy_body(group_id, **kw):
    return {"target_type": "vm_group", "target_id": group_id, "min": 1, "max": 4,
            "metric": "cpu_util", "target": 0.5, **kw}


def test_policy_crud_and_defaults(api, world):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    answer = api.post("/scaling-policies", world.admin_a, json=policy_body(created["id"]))
    assert answer.status_code == 201, answer.get_json()
    policy = answer.get_json()
    assert (policy["mode"], policy["tolerance"], policy["min"], policy["max"]) == (
        "dry_run", 0.1, 1, 4)
    assert policy["scale_down_stabilization_seconds"] == 300 and policy["warmup_seconds"] == 300
    again = api.post("/scaling-policies", world.admin_a, json=policy_body(created["id"]))
    assert "already has a scaling policy" in assert_problem(again, 422,
                                                            "validation_error")["detail"]
    changed = api.patch(f"/scaling-policies/{policy['id']}", world.admin_a,
                        json={"mode": "active", "max": 3})
    assert changed.get_json()["mode"] == "active" and changed.get_json()["max"] == 3
    low = api.patch(f"/scaling-policies/{policy['id']}", world.admin_a, json={"max": 0})
    assert "below the minimum" in assert_problem(low, 422, "validation_error")["errors"]["max"]
    assert api.get(f"/vm-groups/{created['id']}", world.admin_a).get_json()[
        "scaling_policy_id"] == policy["id"]
    assert_problem(api.get(f"/scaling-policies/{policy['id']}", world.admin_b), 404, "not_found")
    decisions = api.get(f"/scaling-policies/{policy['id']}/decisions", world.admin_a)
    assert decisions.get_json() == {"items": [], "total": 0}
    assert api.delete(f"/scaling-policies/{policy['id']}", world.admin_a).status_code == 204


@pytest.mark.parametrize("change, field", [
    ({"target": 0}, "target"), ({"target": 1.5}, "target"), ({"tolerance": 1}, "tolerance"),
    ({"metric": "pods_pending"}, "metric"), ({"min": 5, "max": 2}, "max"),
    ({"target_type": "vm"}, "target_type"), ({"warmup_seconds": -1}, "warmup_seconds"),
    ({"target": True}, "target"), ({"target_id": 99999}, "target_id"),
])
def test_bad_policies_are_refused(api, world, change, field):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    answer = api.post("/scaling-policies", world.admin_a,
                      json=policy_body(created["id"], **change))
    body = assert_problem(answer, 422, "validation_error")
    assert any(key.startswith(field) for key in body["errors"]), body


def test_simulate_replays_the_series_without_side_effects(api, world):
    created = api.post("/vm-groups", world.admin_a, json=group_body(world)).get_json()
    policy = api.post("/scaling-policies", world.admin_a,
                      json=policy_body(created["id"], max=10)).get_json()
    series = {"current": 2, "samples": [
        {"t": 0, "value": 1.0}, {"t": 30, "value": 0.5}, {"t": 60, "value": 0.2},
        {"t": 330, "value": 0.2}, {"t": 400, "value": 0.2}]}
    answer = api.post(f"/scaling-policies/{policy['id']}/simulate", world.admin_a, json=series)
    assert answer.status_code == 200, answer.get_json()
    decisions = answer.get_json()["decisions"]
    assert [(d["t"], d["current"], d["desired"], d["action"]) for d in decisions] == [
        (0, 2, 4, "scale_up"), (30, 4, 4, "none"), (60, 4, 4, "none"),
        (330, 4, 2, "scale_down"), (400, 2, 2, "none")]
    assert set(decisions[0]) == {"t", "current", "desired", "action", "reason"}
    assert "above the target" in decisions[0]["reason"]
    assert db.session.scalar(select(func.count(ScalingDecision.id))) == 0
    assert api.get(f"/vm-groups/{created['id']}", world.admin_a).get_json()["size"] == 2
    backwards = {"current": 2, "samples": [{"t": 30, "value": 1}, {"t": 0, "value": 1}]}
    assert_problem(api.post(f"/scaling-policies/{policy['id']}/simulate", world.admin_a,
                            json=backwards), 422, "validation_error")
    for bad in ({"current": 2, "samples": []}, {"current": -1, "samples": [{"t": 0, "value": 1}]},
                {"current": 2, "samples": [{"t": 0, "value": "high"}]}):
        assert_problem(api.post(f"/scaling-policies/{policy['id']}/simulate", world.admin_a,
                                json=bad), 422, "validation_error")
