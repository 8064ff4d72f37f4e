"""The outbox (SPEC 8.6): one delivery per matching hook, in the change's transaction."""

from __future__ import annotations

import json

from sqlalchemy import select

from portal.extensions import db
from portal.models import VirtualMachine, WebhookDelivery
from portal.provisioning import jobs
from portal.webhooks.service import emit
from tests import factories as f
from tests.webhooks.helpers import deliveries, hook


def estate():
    group = f.group()
    server = f.server(group=group)
    tenant, other = f.tenant(), f.tenant()
    vm = f.vm(tenant, server, f.flavor(), status="active")
    return tenant, other, vm


def test_a_status_change_queues_the_spec_body_for_matching_hooks_only(app):
    tenant, other, vm = estate()
    operator_hook = hook()
    own = hook(tenant=tenant)
    hook(tenant=other)  # another tenant's hook never hears about this VM
    hook(events=("job.finished",))  # does not want this event
    hook(enabled=False)
    db.session.commit()
    assert jobs.transition(vm, ("active",), "deleting", "bye")
    db.session.commit()
    rows = deliveries()
    assert sorted(r.webhook_id for r in rows) == sorted([operator_hook.id, own.id])
    body = json.loads(rows[0].body)
    assert set(body) == {"id", "type", "occurred_at", "resource", "previous_status", "data"}
    assert body["type"] == "vm.status_changed" and body["previous_status"] == "active"
    assert body["resource"] == {"type": "vm", "id": vm.id, "url": f"/api/v1/vms/{vm.id}"}
    assert body["data"]["status"] == "deleting" and body["data"]["name"] == vm.name
    assert rows[0].event_id == rows[1].event_id == body["id"]
    assert {r.status for r in rows} == {"pending"}


def test_a_rolled_back_change_sends_nothing(app):
    _, _, vm = estate()
    hook()
    db.session.commit()
    assert jobs.transition(vm, ("active",), "deleting")
    assert len(db.session.scalars(select(WebhookDelivery)).all()) == 1  # written, uncommitted
    db.session.rollback()
    assert deliveries() == []
    assert db.session.get(VirtualMachine, vm.id).status == "active"


def test_a_refused_transition_sends_nothing(app):
    _, _, vm = estate()
    hook()
    db.session.commit()
    assert not jobs.transition(vm, ("provisioning",), "active")
    db.session.commit()
    assert deliveries() == []


def test_no_hooks_no_rows(app):
    tenant, _, vm = estate()
    db.session.commit()
    assert emit("vm.status_changed", "vm", vm.id, tenant.id, "active", {}) == 0


def test_the_resource_url_is_absolute_when_the_portal_url_is_known(app):
    tenant, _, vm = estate()
    hook(events=("job.finished",))
    app.config["PORTAL_URL"] = "https://portal.example/"
    try:
        emit("job.finished", "job", 7, tenant.id, "claimed", {})
    finally:
        del app.config["PORTAL_URL"]
    db.session.commit()
    (row,) = deliveries()
    assert json.loads(row.body)["resource"]["url"] == "https://portal.example/api/v1/provision-jobs/7"


def test_cluster_status_changes_and_finished_jobs_are_events(app):
    from portal.clusters.service import set_status

    tenant, _, vm = estate()
    cluster = f.cluster(tenant, f.group(), status="active")
    operator = f.user(operator=True)
    hook(events=("cluster.status_changed",))
    db.session.commit()
    set_status(cluster, "maintenance", operator)
    (row,) = deliveries()
    body = json.loads(row.body)
    assert body["resource"] == {"type": "cluster", "id": cluster.id,
                                "url": f"/api/v1/clusters/{cluster.id}"}
    assert (body["previous_status"], body["data"]["status"]) == ("active", "maintenance")


def test_a_cluster_following_its_nodes_is_an_event(app):
    tenant, _, _ = estate()
    group = f.group()
    server = f.server(group=group)
    cluster = f.cluster(tenant, group, status="provisioning")
    node = f.vm(tenant, server, f.flavor(), status="provisioning", k8s_cluster_id=cluster.id)
    hook(events=("cluster.status_changed", "vm.status_changed"))
    db.session.commit()
    assert jobs.transition(node, ("provisioning",), "active")
    jobs.refresh_cluster_status(cluster.id)
    db.session.commit()
    events = {r.event_type: json.loads(r.body) for r in deliveries()}
    assert events["cluster.status_changed"]["previous_status"] == "provisioning"
    assert events["cluster.status_changed"]["data"]["status"] == "active"
    assert events["vm.status_changed"]["data"]["k8s_cluster_id"] == cluster.id
    jobs.refresh_cluster_status(cluster.id)  # nothing changed: no event
    db.session.commit()
    assert len(deliveries()) == 2
