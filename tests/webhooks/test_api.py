"""/api/v1/webhooks: roles, tenant scoping (404), write-only secret, log and resend."""

from __future__ import annotations

from datetime import timedelta

from portal.extensions import db
from portal.models import Webhook, utcnow
from portal.webhooks.service import deliver_due, emit
from tests.api.conftest import assert_problem
from tests.webhooks.helpers import Recorder, deliveries

PUBLIC = "http://93.184.216.34/hook"


def body(**kw):
    return {"name": "ci", "url": PUBLIC, "events": ["vm.status_changed"], **kw}


def count():
    return db.session.scalar(db.select(db.func.count(Webhook.id)))


def test_an_operator_creates_a_hook_and_sees_the_secret_once(api, estate):
    made = api.post("/webhooks", estate.operator, json=body(secret="x" * 20))
    assert made.status_code == 201, made.get_json()
    hook = made.get_json()
    assert hook["secret"] == "x" * 20 and hook["tenant_id"] is None
    read = api.get(f"/webhooks/{hook['id']}", estate.operator).get_json()
    assert "secret" not in read and read["url"] == PUBLIC
    listed = api.get("/webhooks", estate.operator).get_json()
    assert listed["total"] == 1 and "secret" not in listed["items"][0]
    generated = api.post("/webhooks", estate.operator, json=body()).get_json()
    assert len(generated["secret"]) >= 32


def test_tenant_admins_manage_only_their_tenants_hooks(api, estate):
    a = api.post("/webhooks", estate.admin_a, json=body(tenant_id=estate.tenant_a.id))
    assert a.status_code == 201, a.get_json()
    hook_id = a.get_json()["id"]
    operator_hook = api.post("/webhooks", estate.operator, json=body()).get_json()["id"]
    assert api.get(f"/webhooks/{hook_id}", estate.admin_b).status_code == 404
    assert api.delete(f"/webhooks/{hook_id}", estate.admin_b).status_code == 404
    assert api.get(f"/webhooks/{operator_hook}", estate.admin_a).status_code == 404
    assert [h["id"] for h in api.get("/webhooks", estate.admin_a).get_json()["items"]] == [
        hook_id]
    assert api.get("/webhooks", estate.admin_b).get_json()["total"] == 0
    assert_problem(api.get("/webhooks", estate.maintainer), 403, "forbidden")
    assert api.delete(f"/webhooks/{hook_id}", estate.admin_a).status_code == 204
    assert count() == 1


def test_tenant_admin_refusals_change_nothing(api, estate):
    cases = [
        (body(), "tenant_id"),
        (body(tenant_id=estate.tenant_b.id), "tenant_id"),
        (body(tenant_id=estate.tenant_a.id, allow_private=True), "allow_private"),
        (body(tenant_id=estate.tenant_a.id, url="http://169.254.169.254/"), "url"),
    ]
    for payload, field in cases:
        problem = assert_problem(api.post("/webhooks", estate.admin_a, json=payload), 422,
                                 "validation_error")
        assert field in problem["errors"], problem
    assert count() == 0


def test_bad_input_is_refused(api, estate):
    for payload, field in [
        (body(url="ftp://93.184.216.34/"), "url"),
        (body(url="http://10.0.0.5/"), "url"),
        (body(events=["vm.exploded"]), "events"),
        (body(events=[]), "events"),
        (body(secret="short"), "secret"),
        (body(tenant_id=999999), "tenant_id"),
    ]:
        problem = assert_problem(api.post("/webhooks", estate.operator, json=payload), 422,
                                 "validation_error")
        assert any(field in key for key in problem["errors"]), problem
    assert count() == 0
    ok = api.post("/webhooks", estate.operator, json=body(url="http://10.0.0.5/",
                                                          allow_private=True))
    assert ok.status_code == 201


def test_update_keeps_the_secret_unless_replaced(api, estate):
    hook = api.post("/webhooks", estate.operator, json=body(secret="s" * 16)).get_json()
    changed = api.call("PUT", f"/webhooks/{hook['id']}", estate.operator,
                       json=body(enabled=False, events=["job.finished"]))
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["enabled"] is False and "secret" not in changed.get_json()
    row = db.session.get(Webhook, hook["id"])
    db.session.refresh(row)
    assert row.secret == "s" * 16 and row.events == ["job.finished"]
    refused = api.call("PUT", f"/webhooks/{hook['id']}", estate.operator,
                       json=body(url="http://127.0.0.1/"))
    assert_problem(refused, 422, "validation_error")
    db.session.refresh(row)
    assert row.url == PUBLIC


def test_the_delivery_log_and_resend(api, estate):
    hook = api.post("/webhooks", estate.admin_a,
                    json=body(tenant_id=estate.tenant_a.id)).get_json()
    emit("vm.status_changed", "vm", 1, estate.tenant_a.id, "provisioning", {})
    db.session.commit()
    deliver_due(utcnow(), send=Recorder(500))
    log = api.get(f"/webhooks/{hook['id']}/deliveries", estate.admin_a).get_json()
    assert log["total"] == 1
    (entry,) = log["items"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("pending", 1, 500)
    assert api.post(f"/webhooks/deliveries/{entry['id']}/resend",
                    estate.admin_b).status_code == 404
    again = api.post(f"/webhooks/deliveries/{entry['id']}/resend", estate.admin_a)
    assert again.status_code == 200 and again.get_json()["attempts"] == 0
    send = Recorder(200)
    assert deliver_due(utcnow() + timedelta(seconds=1), send=send) == 1
    assert [d.status for d in deliveries()] == ["delivered"]


def test_changes_are_audited_without_the_secret(api, estate):
    from portal.models import AuditEvent

    hook = api.post("/webhooks", estate.operator, json=body(secret="q" * 20)).get_json()
    api.call("PUT", f"/webhooks/{hook['id']}", estate.operator, json=body(enabled=False))
    api.delete(f"/webhooks/{hook['id']}", estate.operator)
    events = db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.object_type == "webhook").order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["create", "update", "delete"]
    assert events[1].changes == {"enabled": {"from": True, "to": False}}
    assert all("q" * 20 not in str(e.changes) for e in events)
