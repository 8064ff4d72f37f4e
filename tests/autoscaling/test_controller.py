"""The controller's autoscaler loop end to end: observations fed through the adapter's
seam (plain data), decisions acted on through the scheduler, the guarded lifecycle and the
reference agent, with the counter invariant of SPEC 8.1 checked after every step."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.autoscaling import service
from portal.autoscaling.service import PolicyFields
from portal.controller import LOOPS
from portal.extensions import db
from portal.models import (
    ScalingDecision,
    ScalingPolicy,
    VirtualMachine,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from portal.vm_groups import service as vm_groups
from tests.api.conftest import Api, token_for
from tests.autoscaling.conftest import Samples
from tests.provisioning.invariants import lifecycle_violations


def policy_for(estate, vm_group, mode="active", **kw):
    fields = PolicyFields(target_type="vm_group", target_id=vm_group.id, min=kw.pop("min", 1),
                          max=kw.pop("max", 8), metric="cpu_util", target=0.5, mode=mode, **kw)
    return service.create_policy(estate.operator, fields)


def sizes(vm_group):
    db.session.expire_all()
    return sorted((vm.name, vm.status) for vm in vm_groups.members(vm_group))


def decisions(policy):
    db.session.expire_all()
    return list(db.session.scalars(service.decisions_query(policy)))


def test_the_loop_is_registered():
    assert "autoscaler" in LOOPS


def test_load_twice_the_target_doubles_the_group_through_the_agent(estate):
    hook = Webhook(url="https://hooks.example/x", secret="s", events=["scaling.decision"],
                   enabled=True, name="h")
    db.session.add(hook)
    db.session.commit()
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = policy_for(estate, web)
    now = utcnow() + timedelta(seconds=400)  # past the members' warm-up
    report = service.evaluate_due(now, Samples(1.0))
    assert report.startswith("1 policies evaluated, 1 decisions")
    (decision,) = decisions(policy)
    assert (decision.action, decision.outcome, decision.current, decision.raw_desired,
            decision.desired) == ("scale_up", "acted", 2, 4, 4)
    assert decision.samples == 2 and decision.value == 1.0 and len(decision.jobs) == 2
    assert decision.source == "controller" and "2 × 1 / 0.5 → 4" in decision.reason
    assert lifecycle_violations() == []
    assert sizes(web) == [("web-1", "active"), ("web-2", "active"),
                          ("web-3", "provisioning"), ("web-4", "provisioning")]
    # The new members landed on other servers than the first two (soft anti-affinity).
    servers = {vm.baremetal_id for vm in vm_groups.members(web)}
    assert len(servers) == 4
    estate.run_agent()
    assert lifecycle_violations() == []
    assert [s for _, s in sizes(web)] == ["active"] * 4
    # The webhook event was written with the decision.
    (delivery,) = db.session.scalars(select(WebhookDelivery)).all()
    assert delivery.event_type == "scaling.decision" and '"desired":4' in delivery.body
    # 10 s later the policy is not due; 30 s later it is: four members at twice the target
    # ask for the maximum.
    assert service.evaluate_due(now + timedelta(seconds=10), Samples(1.0)).startswith("0 ")
    service.evaluate_due(now + timedelta(seconds=30), Samples(1.0))
    assert (decisions(policy)[0].desired, decisions(policy)[0].limits) == (8, [])
    estate.run_agent()
    assert len(vm_groups.live_members(web)) == 8 and lifecycle_violations() == []


def test_scale_down_waits_out_the_stabilisation_window_then_deletes_the_newest(estate):
    web = estate.vm_group(size=4)
    estate.run_agent()
    policy = policy_for(estate, web)
    start = utcnow() + timedelta(seconds=400)
    service.evaluate_due(start, Samples(0.5))  # at target: nothing, no record
    assert decisions(policy) == []
    for step in range(1, 10):
        service.evaluate_due(start + timedelta(seconds=30 * step), Samples(0.2))
    held = decisions(policy)
    assert [(d.outcome, d.desired, d.limits) for d in held] == [
        ("held", 4, ["stabilization"])]
    assert held[0].repeats == 9  # coalesced, not nine rows
    service.evaluate_due(start + timedelta(seconds=300), Samples(0.2))
    latest = decisions(policy)[0]
    assert (latest.action, latest.outcome, latest.desired) == ("scale_down", "acted", 2)
    assert sizes(web) == [("web-1", "active"), ("web-2", "active"),
                          ("web-3", "deleting"), ("web-4", "deleting")]
    assert lifecycle_violations() == []
    estate.run_agent()
    assert sizes(web) == [("web-1", "active"), ("web-2", "active")]
    assert lifecycle_violations() == []


def test_missing_data_never_scales_down(estate):
    web = estate.vm_group(size=3)
    estate.run_agent()
    policy = policy_for(estate, web, min=1)
    start = utcnow() + timedelta(seconds=400)
    for step in range(20):
        service.evaluate_due(start + timedelta(seconds=30 * step), Samples(None))
    assert decisions(policy) == [] and len(vm_groups.live_members(web)) == 3


def test_a_quota_refusal_is_explained_and_backs_off(estate):
    estate.quota.cpu_limit = 12  # room for 3 members of 4 CPU
    db.session.commit()
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = policy_for(estate, web)
    now = utcnow() + timedelta(seconds=400)
    service.evaluate_due(now, Samples(1.0))
    (refused,) = decisions(policy)
    assert (refused.action, refused.outcome, refused.desired) == ("scale_up", "refused", 4)
    assert refused.refusal["code"] == "quota_exceeded"
    # The scheduler's numbers: two more members of 4 cores need 8, the quota has 4 left.
    assert (refused.refusal["details"]["dimension"], refused.refusal["details"]["requested"],
            refused.refusal["details"]["headroom"]) == ("cpu", 8, 4)
    assert "needs 8 cores, 4 cores of quota left" in refused.refusal["message"]
    assert refused.refusal["message"] in refused.reason
    assert "No new scale-up for 5 minutes" in refused.reason
    db.session.refresh(policy)
    assert policy.backoff_seconds == 300 and policy.backoff_until == now + timedelta(minutes=5)
    # The API serves the decision record whole: inputs, samples and their age, the
    # formula's and the final size, the limits, the refusal, the jobs (none).
    api = Api(estate.app.test_client())
    token = token_for(estate.operator)
    (served,) = api.get(f"/scaling-policies/{policy.id}/decisions", token).get_json()["items"]
    assert {k: served[k] for k in ("source", "mode", "action", "outcome", "metric", "target",
                                   "value", "samples", "sample_age_seconds", "current",
                                   "raw_desired", "desired", "limits", "jobs")} == {
        "source": "controller", "mode": "active", "action": "scale_up", "outcome": "refused",
        "metric": "cpu_util", "target": 0.5, "value": 1.0, "samples": 2,
        "sample_age_seconds": refused.sample_age_seconds, "current": 2, "raw_desired": 4,
        "desired": 4, "limits": [], "jobs": []}
    assert 0 < served["sample_age_seconds"] <= 180
    assert served["refusal"]["details"]["headroom"] == 4
    assert [m["state"] for m in served["inputs"]["members"]] == ["counted", "counted"]
    assert served["reason"] == refused.reason
    assert api.get(f"/scaling-policies/{policy.id}", token).get_json()["backoff_until"]
    assert len(vm_groups.live_members(web)) == 2 and lifecycle_violations() == []
    # Inside the backoff nothing is tried; the evaluation says why.
    service.evaluate_due(now + timedelta(seconds=60), Samples(1.0))
    held = decisions(policy)[0]
    assert (held.outcome, held.desired, held.limits) == ("held", 2, ["backoff"])
    # After it, refused again: the backoff doubles.
    service.evaluate_due(now + timedelta(seconds=301), Samples(1.0))
    assert decisions(policy)[0].outcome == "refused"
    db.session.refresh(policy)
    assert policy.backoff_seconds == 600
    # Room again: once the backoff is over the scale-up is done, and the backoff starts over.
    estate.quota.cpu_limit = 40
    db.session.commit()
    service.evaluate_due(now + timedelta(seconds=301 + 601), Samples(1.0))
    acted = decisions(policy)[0]
    assert (acted.outcome, acted.desired, len(acted.jobs)) == ("acted", 4, 2)
    db.session.refresh(policy)
    assert (policy.backoff_seconds, policy.backoff_until) == (0, None)
    assert lifecycle_violations() == []


def test_dry_run_records_without_acting(estate):
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = policy_for(estate, web, mode="dry_run")
    now = utcnow() + timedelta(seconds=400)
    service.evaluate_due(now, Samples(1.0))
    service.evaluate_due(now + timedelta(seconds=30), Samples(1.0))
    (decision,) = decisions(policy)
    assert (decision.outcome, decision.desired, decision.repeats) == ("dry_run", 4, 2)
    assert decision.jobs == [] and len(vm_groups.live_members(web)) == 2
    assert db.session.scalar(select(ScalingPolicy.mode)) == "dry_run"


def test_policies_start_in_dry_run(estate):
    web = estate.vm_group(size=1)
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="vm_group", target_id=web.id, max=3))
    assert policy.mode == "dry_run" and policy.tolerance == 0.1
    assert policy.scale_down_stabilization_seconds == 300 and policy.warmup_seconds == 300


def test_off_policies_and_deleted_groups_are_left_alone(estate):
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = policy_for(estate, web, mode="off")
    now = utcnow() + timedelta(seconds=400)
    assert service.evaluate_due(now, Samples(1.0)).startswith("0 policies")
    vm_groups.delete_group(web, estate.operator)
    assert db.session.get(ScalingPolicy, policy.id) is None
    estate.run_agent()
    assert service.evaluate_due(now, Samples(1.0)).endswith("1 groups deleted")
    db.session.refresh(web)
    assert web.status == "deleted"
    assert db.session.scalar(select(ScalingDecision.id)) is None
    assert all(vm.status == "deleted" for vm in db.session.scalars(select(VirtualMachine)))


def test_a_capacity_refusal_carries_the_per_reason_count(estate):
    """Strictly one member per server on four servers: a fifth and sixth cannot be placed,
    and the decision says why, server by server."""
    web = estate.vm_group(size=4, anti_affinity="hard")
    estate.run_agent()
    policy = policy_for(estate, web)
    service.evaluate_due(utcnow() + timedelta(seconds=400), Samples(0.75))
    (refused,) = decisions(policy)
    assert (refused.outcome, refused.current, refused.desired) == ("refused", 4, 6)
    assert refused.refusal["code"] == "insufficient_capacity"
    assert "already holds a member" in refused.refusal["message"]
    assert len(vm_groups.live_members(web)) == 4 and lifecycle_violations() == []
