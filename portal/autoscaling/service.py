"""Scaling policies and their decisions (SPEC 8.5): create, change and delete policies;
evaluate a VM group's policy (the controller's loop, every 30 s) and act on the decision
through the scheduler and the guarded lifecycle; record every decision that wanted a
change, with its inputs, in the transaction of the change, and announce it to webhooks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from portal.audit.service import record
from portal.auth.access import administered_tenant_ids, tenant_ids
from portal.autoscaling import engine, observe
from portal.extensions import begin_write, db
from portal.i18n import _
from portal.models import (
    LIVE_JOB_STATUSES,
    K8sCluster,
    ProvisionJob,
    ScalingDecision,
    ScalingPolicy,
    User,
    VirtualMachine,
    VmGroup,
    utcnow,
)
from portal.scheduler.reservation import PlacementRefused
from portal.vm_groups import service as vm_groups
from portal.webhooks import service as webhooks

# What a VM group's policy may follow (the VM samples of SPEC 8.4), with its default
# target; a cluster's worker pool follows cluster-autoscaler, which scales on pods that
# cannot be scheduled (never on CPU: its own FAQ says why).
VM_GROUP_METRICS = {"cpu_util": 0.6, "memory_used_gib": 8.0, "storage_used_gib": 100.0}
CLUSTER_METRICS = {"pods_pending": 1.0}
MAX_WINDOW_SECONDS = 3600
MAX_CLUSTER_WORKERS = 200


class PolicyInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class PolicyError(ValueError):
    """A request about a policy that cannot be carried out; the message says why."""


@dataclass
class PolicyFields:
    target_type: str | None = None
    target_id: int | None = None
    min: int | None = None
    max: int | None = None
    metric: str | None = None
    target: float | None = None
    tolerance: float | None = None
    scale_down_stabilization_seconds: int | None = None
    warmup_seconds: int | None = None
    mode: str | None = None


# ----------------------------------------------------------------------------- policies


def policies_of(user=None):
    """The policies the user may see, as a select()."""
    stmt = select(ScalingPolicy)
    ids = tenant_ids(user)
    if ids is not None:
        stmt = stmt.where(ScalingPolicy.tenant_id.in_(ids))
    return stmt


def visible_policy(policy_id: int, user=None) -> ScalingPolicy | None:
    return db.session.scalar(policies_of(user).where(ScalingPolicy.id == policy_id))


def may_change(policy: ScalingPolicy, user=None) -> bool:
    allowed = administered_tenant_ids(user)
    return allowed is None or policy.tenant_id in allowed


def _target(user, target_type, target_id, errors):
    """The VM group or cluster the user may act on, or None with an error."""
    model = {"vm_group": VmGroup, "cluster": K8sCluster}.get(target_type or "")
    if model is None:
        errors["target_type"] = _("Choose vm_group or cluster.")
        return None
    obj = db.session.get(model, target_id) if isinstance(target_id, int) else None
    allowed = administered_tenant_ids(user)
    if obj is None or obj.status in ("deleting", "deleted") or (
            allowed is not None and obj.tenant_id not in allowed):
        errors["target_id"] = (_("Choose one of your VM groups.") if model is VmGroup
                               else _("Choose one of your clusters."))
        return None
    return obj


def _number(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool) and (
        kind is int or math.isfinite(value))


def validate(user, fields: PolicyFields, policy: ScalingPolicy | None = None) -> dict:
    """The policy's columns from ``fields`` (on an existing policy, what is None stays),
    or PolicyInvalid naming every bad field."""
    errors: dict[str, str] = {}
    if policy is None:
        target = _target(user, fields.target_type, fields.target_id, errors)
        target_type = fields.target_type
    else:
        target = policy.vm_group if policy.target_type == "vm_group" else policy.cluster
        target_type = policy.target_type
    is_cluster = target_type == "cluster"
    metrics = CLUSTER_METRICS if is_cluster else VM_GROUP_METRICS

    def pick(name, current):
        value = getattr(fields, name)
        return current if value is None else value

    metric = pick("metric", policy.metric if policy else next(iter(metrics)))
    if metric not in metrics:
        errors["metric"] = (
            _("A cluster's worker pool scales on pods that cannot be scheduled "
              "(cluster-autoscaler): its metric is pods_pending.") if is_cluster else
            _("Choose one of %(metrics)s.", metrics=", ".join(VM_GROUP_METRICS)))
    default_target = metrics.get(metric, 1.0)
    target_value = pick("target", policy.target if policy and metric == policy.metric
                        else default_target)
    if isinstance(target_value, int) and not isinstance(target_value, bool):
        target_value = float(target_value)
    if not _number(target_value, float) or target_value <= 0:
        errors["target"] = _("The target is a number above 0.")
    elif metric == "cpu_util" and target_value > 1:
        errors["target"] = _("cpu_util is a share of the flavor's CPU: aim at 0.05 to 1.")
    tolerance = pick("tolerance", policy.tolerance if policy else 0.1)
    if isinstance(tolerance, int) and not isinstance(tolerance, bool):
        tolerance = float(tolerance)
    if not _number(tolerance, float) or not 0 <= tolerance < 1:
        errors["tolerance"] = _("The tolerance is at least 0 and below 1 (0.1 allows 10 "
                                "percent either side).")
    ceiling = MAX_CLUSTER_WORKERS if is_cluster else vm_groups.MAX_SIZE
    low = pick("min", policy.min_size if policy else 1)
    high = pick("max", policy.max_size if policy else None)
    if not _number(low, int) or not 0 <= low <= ceiling:
        errors["min"] = _("The minimum is 0 to %(max)s.", max=ceiling)
    if high is None:
        errors["max"] = _("Give the most members the target may have.")
    elif not _number(high, int) or not 0 <= high <= ceiling:
        errors["max"] = _("The maximum is 0 to %(max)s.", max=ceiling)
    elif _number(low, int) and high < low:
        errors["max"] = _("The maximum (%(max)s) is below the minimum (%(min)s).",
                          max=high, min=low)
    windows = {}
    for name, default in (("scale_down_stabilization_seconds", 300), ("warmup_seconds", 300)):
        value = pick(name, getattr(policy, name) if policy else default)
        if not _number(value, int) or not 0 <= value <= MAX_WINDOW_SECONDS:
            errors[name] = _("A window lasts 0 to %(max)s seconds.", max=MAX_WINDOW_SECONDS)
        windows[name] = value
    mode = pick("mode", policy.mode if policy else "dry_run")
    if mode not in ("off", "dry_run", "active"):
        errors["mode"] = _("Choose off, dry_run or active.")
    if policy is None and target is not None and not errors:
        column = ScalingPolicy.k8s_cluster_id if is_cluster else ScalingPolicy.vm_group_id
        if db.session.scalar(select(ScalingPolicy.id).where(column == target.id)):
            errors["target_id"] = _("%(name)s already has a scaling policy: change that one.",
                                    name=target.name)
    if errors:
        raise PolicyInvalid(errors)
    values = {"min_size": low, "max_size": high, "metric": metric, "target": target_value,
              "tolerance": tolerance, "mode": mode, **windows}
    if policy is None:
        values.update(target_type=target_type, tenant_id=target.tenant_id,
                      vm_group_id=target.id if not is_cluster else None,
                      k8s_cluster_id=target.id if is_cluster else None)
    return values


AUDITED = ("min_size", "max_size", "metric", "target", "tolerance", "mode",
           "scale_down_stabilization_seconds", "warmup_seconds")


def create_policy(user: User | None, fields: PolicyFields) -> ScalingPolicy:
    values = validate(user, fields)
    policy = ScalingPolicy(**values, created_by=user.id if user is not None else None,
                           recommendations=[], backoff_seconds=0)
    db.session.add(policy)
    db.session.flush()
    record("create", "scaling_policy", policy.id, policy.target_name,
           {k: {"from": None, "to": values[k]} for k in AUDITED}, user=user)
    db.session.commit()
    return policy


def update_policy(policy: ScalingPolicy, user: User | None, fields: PolicyFields) -> None:
    values = validate(user, fields, policy)
    changes = {k: {"from": getattr(policy, k), "to": v} for k, v in values.items()
               if getattr(policy, k) != v}
    for name, value in values.items():
        setattr(policy, name, value)
    if "mode" in changes:
        # A new mode starts from a clean slate: no backoff, no window from before.
        policy.backoff_until, policy.backoff_seconds, policy.recommendations = None, 0, []
    if changes:
        record("update", "scaling_policy", policy.id, policy.target_name, changes, user=user)
    db.session.commit()


def delete_policy(policy: ScalingPolicy, user: User | None) -> None:
    record("delete", "scaling_policy", policy.id, policy.target_name,
           {"mode": {"from": policy.mode, "to": None}}, user=user)
    db.session.delete(policy)
    db.session.commit()


def decisions_query(policy: ScalingPolicy):
    return (select(ScalingDecision).where(ScalingDecision.policy_id == policy.id)
            .order_by(ScalingDecision.id.desc()))


def rules_of(policy: ScalingPolicy) -> engine.Rules:
    return engine.Rules(min_size=policy.min_size, max_size=policy.max_size,
                        target=policy.target, tolerance=policy.tolerance,
                        scale_down_stabilization=policy.scale_down_stabilization_seconds,
                        warmup=policy.warmup_seconds, metric=policy.metric)


def simulate(policy: ScalingPolicy, current: int, samples: Sequence[tuple[float, float]]):
    """Replay a series against the policy's rules; nothing is read or written."""
    if policy.target_type == "cluster":
        raise PolicyError(_("A cluster's worker pool follows cluster-autoscaler, which scales "
                            "on pods that cannot be scheduled: there is no metric series to "
                            "replay."))
    return engine.simulate(rules_of(policy), current, samples)


# ---------------------------------------------------------------------------- decisions

COALESCED = ("held", "dry_run")


def record_decision(policy: ScalingPolicy, now: datetime, *, source: str, action: str,
                    outcome: str, current: int, raw_desired: int, desired: int,
                    limits: Sequence[str] = (), notes: Sequence[engine.Note] = (),
                    value: float | None = None, samples: int = 0,
                    sample_age: float | None = None, members: Sequence[dict] = (),
                    refusal: dict | None = None, vms: Sequence[VirtualMachine] = ()
                    ) -> ScalingDecision:
    """Write the decision in the caller's transaction, with its webhook event. The same
    held or dry-run decision as the previous one only counts one more repeat."""
    reason = " ".join(message % params for message, params in notes)
    inputs = {"members": list(members), "notes": [[m, p] for m, p in notes]}
    job_ids = list(db.session.scalars(
        select(ProvisionJob.id).where(ProvisionJob.vm_id.in_([vm.id for vm in vms]),
                                      ProvisionJob.status.in_(LIVE_JOB_STATUSES))
        .order_by(ProvisionJob.id))) if vms else []
    last = db.session.scalar(select(ScalingDecision).where(
        ScalingDecision.policy_id == policy.id).order_by(ScalingDecision.id.desc()).limit(1))
    if (last is not None and outcome in COALESCED and last.outcome == outcome
            and (last.source, last.mode, last.action, last.current, last.desired,
                 list(last.limits or [])) == (source, policy.mode, action, current, desired,
                                              list(limits))):
        last.repeats += 1
        last.last_seen_at = now
        last.value, last.samples, last.sample_age_seconds = value, samples, sample_age
        last.raw_desired, last.reason, last.inputs = raw_desired, reason, inputs
        return last
    decision = ScalingDecision(
        policy_id=policy.id, source=source, mode=policy.mode, action=action, outcome=outcome,
        metric=policy.metric, target=policy.target, value=value, samples=samples,
        sample_age_seconds=sample_age, current=current, raw_desired=raw_desired,
        desired=desired, limits=list(limits), reason=reason, refusal=refusal, inputs=inputs,
        jobs=job_ids, repeats=1, last_seen_at=now, created_at=now, updated_at=now)
    db.session.add(decision)
    db.session.flush()
    webhooks.emit("scaling.decision", "scaling_policy", policy.id, policy.tenant_id, None, {
        "decision_id": decision.id, "target_type": policy.target_type,
        "target_id": policy.target_id, "source": source, "mode": policy.mode,
        "action": action, "outcome": outcome, "current": current,
        "raw_desired": raw_desired, "desired": desired, "limits": list(limits),
        "metric": policy.metric, "value": value, "target": policy.target, "reason": reason,
        "jobs": job_ids, "refusal": refusal,
    })
    return decision


def refusal_of(refused: PlacementRefused) -> dict:
    refusal = refused.refusal
    return {"code": refusal.code, "message": refusal.message, "details": refusal.details,
            "suggestions": list(refused.suggestions)}


def back_off(policy: ScalingPolicy, now: datetime) -> engine.Note:
    """A refused scale-up: wait 5 minutes, doubling up to 30, before trying again."""
    seconds = engine.next_backoff(policy.backoff_seconds)
    policy.backoff_seconds = seconds
    policy.backoff_until = now + timedelta(seconds=seconds)
    return (engine.N_("No new scale-up for %(minutes)s minutes (until %(until)s UTC)."),
            {"minutes": seconds // 60,
             "until": policy.backoff_until.isoformat(sep=" ", timespec="minutes")})


def backing_off(policy: ScalingPolicy, now: datetime) -> bool:
    return policy.backoff_until is not None and now < policy.backoff_until


# ---------------------------------------------------------------------------- controller


def evaluate_due(now: datetime | None = None,
                 samples: observe.SampleSource = observe.latest_vm_samples) -> str:
    """The controller's pass: finish deleted VM groups, then evaluate every VM group
    policy that is not off and whose last evaluation is 30 s old or more."""
    now = now or utcnow()
    begin_write()
    finished = vm_groups.finish_deleting()
    db.session.commit()
    due = now - timedelta(seconds=engine.EVALUATION_SECONDS - 1)
    ids = list(db.session.scalars(
        select(ScalingPolicy.id)
        .join(VmGroup, VmGroup.id == ScalingPolicy.vm_group_id)
        .where(ScalingPolicy.target_type == "vm_group", ScalingPolicy.mode != "off",
               VmGroup.status == "active",
               or_(ScalingPolicy.last_evaluated_at.is_(None),
                   ScalingPolicy.last_evaluated_at <= due))
        .order_by(ScalingPolicy.id)))
    db.session.rollback()
    outcomes = [evaluate_policy(policy_id, now, samples) for policy_id in ids]
    decided = sum(1 for outcome in outcomes if outcome is not None)
    return f"{len(ids)} policies evaluated, {decided} decisions, {finished} groups deleted"


def members_of(vm_group: VmGroup, metric: str, now: datetime, stale_after: float,
               samples: observe.SampleSource) -> list[engine.Member]:
    """The group's members as the engine sees them. Only an active member serves, since
    it became active; one being built warms up; a failed one serves nothing (no sample)."""
    live = vm_groups.live_members(vm_group)
    measured = samples([vm.id for vm in live if vm.status in ("active", "migrating")], metric,
                       now - timedelta(seconds=stale_after))
    result = []
    for vm in live:
        if vm.status in ("provisioning", "pending"):
            result.append(engine.Member(vm.id, now))
        else:
            sample = measured.get(vm.id) if vm.status != "error" else None
            result.append(engine.Member(vm.id, vm.updated_at, sample))
    return result


def evaluate_policy(policy_id: int, now: datetime,
                    samples: observe.SampleSource = observe.latest_vm_samples
                    ) -> ScalingDecision | None:
    """Evaluate one VM group policy and, in active mode, act. Returns the decision
    recorded, or None when nothing was wanted."""
    begin_write()
    policy = db.session.scalar(select(ScalingPolicy).where(ScalingPolicy.id == policy_id)
                               .with_for_update())
    if (policy is None or policy.mode == "off" or policy.vm_group is None
            or policy.vm_group.status != "active"):
        db.session.rollback()
        return None
    vm_group = policy.vm_group
    rules = rules_of(policy)
    members = members_of(vm_group, policy.metric, now, rules.stale_after, samples)
    window = [engine.Recommendation(datetime.fromisoformat(at), size)
              for at, size in (policy.recommendations or [])]
    result = engine.evaluate(rules, members, now, window)
    policy.recommendations = [[r.at.isoformat(), r.size] for r in result.window]
    policy.last_evaluated_at = now
    if not result.wants_change:
        db.session.commit()
        return None
    decided = dict(source="controller", action=result.action, current=result.current,
                   raw_desired=result.raw_desired, desired=result.desired, value=result.value,
                   samples=result.samples, sample_age=result.sample_age,
                   members=result.members)
    limits, notes = list(result.limits), list(result.notes)
    if result.action == "scale_up" and backing_off(policy, now):
        notes.append((engine.N_("Backing off after a refused scale-up: next attempt after "
                                "%(until)s UTC."),
                      {"until": policy.backoff_until.isoformat(sep=" ", timespec="minutes")}))
        decision = record_decision(policy, now, outcome="held", limits=[*limits, "backoff"],
                                   notes=notes, **{**decided, "desired": result.current})
        db.session.commit()
        return decision
    if result.action == "none" or policy.mode == "dry_run":
        outcome = "held" if result.action == "none" else "dry_run"
        decision = record_decision(policy, now, outcome=outcome, limits=limits, notes=notes,
                                   **decided)
        db.session.commit()
        return decision
    policy_key, group_key = policy.id, vm_group.id
    db.session.commit()  # the resize owns its transaction
    recorded: list[ScalingDecision] = []

    def decide(vms: list[VirtualMachine]) -> None:
        fresh = db.session.get(ScalingPolicy, policy_key)
        if result.action == "scale_up":
            fresh.backoff_until, fresh.backoff_seconds = None, 0
        recorded.append(record_decision(fresh, now, outcome="acted", limits=limits,
                                        notes=notes, vms=vms, **decided))

    vm_group = db.session.get(VmGroup, group_key)
    try:
        vm_groups.resize(vm_group, result.desired, None, and_then=decide)
    except PlacementRefused as refused:
        db.session.rollback()
        begin_write()
        policy = db.session.get(ScalingPolicy, policy_key)
        refusal = refusal_of(refused)
        notes += [(engine.N_("The scheduler refused: %(message)s"),
                   {"message": refusal["message"]}), back_off(policy, now)]
        decision = record_decision(policy, now, outcome="refused", limits=limits, notes=notes,
                                   refusal=refusal, **decided)
        db.session.commit()
        return decision
    except vm_groups.VmGroupError as error:
        db.session.rollback()
        begin_write()
        policy = db.session.get(ScalingPolicy, policy_key)
        notes.append((engine.N_("Not done: %(message)s"), {"message": str(error)}))
        decision = record_decision(policy, now, outcome="failed", limits=limits, notes=notes,
                                   **decided)
        db.session.commit()
        return decision
    return recorded[0] if recorded else None

