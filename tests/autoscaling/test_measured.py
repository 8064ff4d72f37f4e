"""Autoscaling on measurements that arrived the real way: samples POSTed to
/api/v1/metrics by an agent, read back by the autoscaler through portal.metrics.query."""

from __future__ import annotations

from datetime import UTC

from portal.auth import tokens
from portal.autoscaling import service
from portal.autoscaling.service import PolicyFields
from portal.extensions import db
from portal.models import utcnow
from portal.vm_groups import service as vm_groups
from tests.provisioning.invariants import lifecycle_violations


def test_samples_posted_to_the_metrics_api_drive_a_scale_up(estate):
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="vm_group", target_id=web.id, min=1, max=8, metric="cpu_util",
        target=0.5, mode="active", warmup_seconds=0))
    token = tokens.issue_token(estate.operator, "agent", scopes=["write"]).secret
    db.session.commit()
    members = vm_groups.live_members(web)
    ts = utcnow().replace(tzinfo=UTC, microsecond=0).isoformat()
    response = estate.app.test_client().post(
        "/api/v1/metrics", headers={"Authorization": f"Bearer {token}"},
        json={"agent": "edge-1", "samples": [
            {"object_type": "vm", "object_id": vm.id, "ts": ts,
             "values": {"cpu_util": 0.9}} for vm in members]})
    assert response.status_code == 200, response.get_json()

    report = service.evaluate_due(utcnow())  # the default source: the metrics store
    assert report.startswith("1 policies evaluated, 1 decisions"), report
    db.session.expire_all()
    (decision,) = db.session.scalars(service.decisions_query(policy)).all()
    assert (decision.action, decision.current, decision.desired) == ("scale_up", 2, 4)
    assert decision.samples == 2 and abs(decision.value - 0.9) < 1e-6
    assert len(decision.jobs) == 2 and lifecycle_violations() == []
    estate.run_agent()
    db.session.expire_all()
    assert sorted(vm.status for vm in vm_groups.live_members(web)) == ["active"] * 4
    assert lifecycle_violations() == []
