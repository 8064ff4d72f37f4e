"""Autoscaling (SPEC 8.5): VM groups, scaling policies, their decisions, and the replay
of a metric series against a policy."""

from __future__ import annotations

import math
from typing import Literal

from flask import url_for
from flask_login import current_user
from pydantic import Field, field_validator
from sqlalchemy import select

from portal.api import api, bp
from portal.api.core import Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import CONFLICT, ApiError, not_found, problem
from portal.api.schemas import Id, Input, Output, Paging, Stamped, UtcDatetime, page_of
from portal.api.vms import ANTI_AFFINITY_HELP, AntiAffinity, Vm
from portal.autoscaling import service
from portal.autoscaling.engine import EVALUATION_SECONDS
from portal.autoscaling.lists import policies
from portal.extensions import db
from portal.models import (
    DECISION_ACTIONS,
    DECISION_OUTCOMES,
    POLICY_MODES,
    POLICY_TARGETS,
    ScalingPolicy,
    VmGroup,
)
from portal.models.autoscaling import DECISION_SOURCES, VM_GROUP_STATUSES
from portal.vm_groups import service as vm_groups
from portal.vm_groups.lists import vm_groups as vm_group_list

GROUP_TAGS, POLICY_TAGS = ("vm-groups",), ("scaling-policies",)
READ_GROUPS, WRITE_GROUPS = Access("vm_groups"), Access("vm_groups", "write")
READ_POLICIES, WRITE_POLICIES = Access("autoscaling"), Access("autoscaling", "write")
Mode = Literal[POLICY_MODES]  # type: ignore[valid-type]
MAX_SIMULATED_SAMPLES = 10_000


def _user():
    return current_user._get_current_object()


@bp.errorhandler(vm_groups.VmGroupError)
@bp.errorhandler(service.PolicyError)
def _state_conflict(error: Exception):
    db.session.rollback()
    return problem(CONFLICT, str(error))


# ------------------------------------------------------------------------------ VM groups


class VmGroupOut(Stamped):
    name: str
    tenant_id: int
    group_id: int
    spec_id: int = Field(description="The members' flavor.")
    size: int = Field(description="Members that are not being deleted.")
    anti_affinity: AntiAffinity
    status: Literal[VM_GROUP_STATUSES]  # type: ignore[valid-type]


class VmGroupDetail(VmGroupOut):
    members: list[Vm] = Field(description="Members not deleted yet, oldest first.")
    scaling_policy_id: int | None


VmGroupPage = page_of(VmGroupOut)


class VmGroupCreate(Input):
    name: str = Field(max_length=255, description=(
        f"1–{vm_groups.MAX_NAME_LENGTH} letters, digits, '.', '-', '_'; members are "
        "NAME-1 … NAME-N."))
    tenant_id: Id
    group_id: Id
    spec_id: Id = Field(description="The members' flavor.")
    size: int = Field(ge=1, le=vm_groups.MAX_SIZE, description="Members placed at once, all "
                                                               "or none.")
    anti_affinity: AntiAffinity = Field("soft", description=ANTI_AFFINITY_HELP)


class VmGroupResize(Input):
    size: int = Field(ge=0, le=vm_groups.MAX_SIZE, description=(
        "Up: the new members are placed all or none, away from the others' servers. Down: "
        "failed members go first, then the newest."))


VmGroupQuery = list_query("VmGroupQuery", vm_group_list, (
    ApiFilter("status", "status", Literal[VM_GROUP_STATUSES]),  # type: ignore[valid-type]
    ApiFilter("tenant_id", "tenant", int, "Only this tenant's VM groups."),
))


def _visible_group(vm_group_id: int) -> VmGroup:
    found = db.session.scalar(vm_group_list.statement().where(VmGroup.id == vm_group_id))
    if found is None:
        raise not_found()
    return found


def _managed_group(vm_group_id: int) -> VmGroup:
    found = _visible_group(vm_group_id)
    if not service.may_change(found):
        raise not_found()
    return found


def _group_detail(vm_group: VmGroup) -> VmGroupDetail:
    db.session.expire(vm_group)
    policy_id = db.session.scalar(select(ScalingPolicy.id).where(
        ScalingPolicy.vm_group_id == vm_group.id))
    return VmGroupDetail.model_validate({
        **VmGroupOut.model_validate(vm_group).model_dump(),
        "members": vm_groups.members(vm_group), "scaling_policy_id": policy_id})


@api.operation("GET", "/vm-groups", summary="List VM groups", tags=GROUP_TAGS,
               access=READ_GROUPS, query=VmGroupQuery, response=VmGroupPage)
def list_vm_groups(query):
    """VM groups the token may see; filters as on the VM group list page."""
    return run(vm_group_list, query)


@api.operation("GET", "/vm-groups/{vm_group_id}", summary="Get a VM group", tags=GROUP_TAGS,
               access=READ_GROUPS, response=VmGroupDetail)
def get_vm_group(vm_group_id: int):
    return _group_detail(_visible_group(vm_group_id))


@api.operation("POST", "/vm-groups", summary="Create a VM group", tags=GROUP_TAGS,
               access=WRITE_GROUPS, body=VmGroupCreate, response=VmGroupDetail, status=201,
               errors=(409,))
def create_vm_group(body: VmGroupCreate):
    """Places ``size`` identical members in one transaction, all or none (409 with the
    scheduler's code and numbers when they do not fit), spread over servers."""
    request = vm_groups.build_request(
        _user(), name=body.name, tenant_id=body.tenant_id, group_id=body.group_id,
        spec_id=body.spec_id, size=body.size, anti_affinity=body.anti_affinity)
    vm_group = vm_groups.create_group(request, _user())
    return _group_detail(vm_group), {
        "Location": url_for("api.get_vm_group", vm_group_id=vm_group.id)}


@api.operation("POST", "/vm-groups/{vm_group_id}/resize", summary="Resize a VM group",
               tags=GROUP_TAGS, access=WRITE_GROUPS, body=VmGroupResize,
               response=VmGroupDetail, status=202, errors=(409,))
def resize_vm_group(vm_group_id: int, body: VmGroupResize):
    """By hand, whatever the group's scaling policy: up through the scheduler (409 with the
    refusal when the new members do not fit), down through the agent."""
    vm_group = _managed_group(vm_group_id)
    vm_groups.resize(vm_group, body.size, _user())
    return _group_detail(vm_group)


@api.operation("DELETE", "/vm-groups/{vm_group_id}", summary="Delete a VM group",
               tags=GROUP_TAGS, access=WRITE_GROUPS, response=VmGroupDetail, status=202,
               errors=(409,))
def delete_vm_group(vm_group_id: int):
    """Every member is deleted through the agent, and the group's scaling policy with it;
    the group is ``deleted`` once its last member is."""
    vm_group = _managed_group(vm_group_id)
    vm_groups.delete_group(vm_group, _user())
    return _group_detail(vm_group)


# -------------------------------------------------------------------------------- policies


class Policy(Stamped):
    target_type: Literal[POLICY_TARGETS]  # type: ignore[valid-type]
    target_id: int = Field(description="The VM group's or the cluster's id.")
    tenant_id: int
    min: int = Field(validation_alias="min_size")
    max: int = Field(validation_alias="max_size")
    metric: str
    target: float
    tolerance: float
    scale_down_stabilization_seconds: int
    warmup_seconds: int
    mode: Mode
    last_evaluated_at: UtcDatetime | None
    backoff_until: UtcDatetime | None = Field(description=(
        "After a refused scale-up, no new one before this time (5 minutes, doubling to 30)."))


PolicyPage = page_of(Policy)

METRIC_HELP = (
    "VM groups: cpu_util (share of the flavor's CPU, 0–1; the default), memory_used_gib or "
    "storage_used_gib, averaged over the members. Clusters: pods_pending — the worker pool "
    "follows cluster-autoscaler over externalgrpc, which scales on pods that cannot be "
    "scheduled.")


class PolicyCreate(Input):
    target_type: Literal[POLICY_TARGETS]  # type: ignore[valid-type]
    target_id: Id
    min: int = Field(1, ge=0, le=service.MAX_CLUSTER_WORKERS)
    max: int = Field(ge=0, le=service.MAX_CLUSTER_WORKERS)
    metric: str | None = Field(None, max_length=64, description=METRIC_HELP)
    target: float | None = Field(None, gt=0, description="Default: 0.6 for cpu_util.")
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=service.MAX_WINDOW_SECONDS)
    warmup_seconds: int = Field(300, ge=0, le=service.MAX_WINDOW_SECONDS)
    mode: Mode = Field("dry_run", description="New policies start in dry_run: decisions are "
                                              "recorded, nothing is done.")

    @field_validator("target", "tolerance", mode="before")
    @classmethod
    def _a_number(cls, value):
        # Strict JSON: 1 is a fine float; true is not, and neither is NaN.
        if isinstance(value, bool):
            raise ValueError("Input should be a number")
        return float(value) if isinstance(value, int) else value


class PolicyChange(Input):
    min: int | None = Field(None, ge=0, le=service.MAX_CLUSTER_WORKERS)
    max: int | None = Field(None, ge=0, le=service.MAX_CLUSTER_WORKERS)
    metric: str | None = Field(None, max_length=64, description=METRIC_HELP)
    target: float | None = Field(None, gt=0)
    tolerance: float | None = Field(None, ge=0, lt=1)
    scale_down_stabilization_seconds: int | None = Field(None, ge=0,
                                                         le=service.MAX_WINDOW_SECONDS)
    warmup_seconds: int | None = Field(None, ge=0, le=service.MAX_WINDOW_SECONDS)
    mode: Mode | None = None

    _numbers = field_validator("target", "tolerance", mode="before")(
        PolicyCreate._a_number.__func__)


class Decision(Stamped):
    policy_id: int
    source: Literal[DECISION_SOURCES]  # type: ignore[valid-type]
    mode: Mode
    action: Literal[DECISION_ACTIONS]  # type: ignore[valid-type]
    outcome: Literal[DECISION_OUTCOMES]  # type: ignore[valid-type]
    metric: str
    target: float | None
    value: float | None = Field(description="The members' average the decision used.")
    samples: int = Field(description="Fresh samples it used.")
    sample_age_seconds: float | None = Field(description="Age of the oldest sample used.")
    current: int
    raw_desired: int = Field(description="ceil(current × value / target), or current "
                                         "within the tolerance.")
    desired: int = Field(description="After stabilisation, warm-up, missing data, min/max.")
    limits: list[str]
    reason: str
    refusal: dict | None = Field(description="The scheduler's refusal: code, message, "
                                             "details (numbers), suggestions.")
    inputs: dict
    jobs: list[int] = Field(description="Provisioning jobs it queued.")
    repeats: int = Field(description="Evaluations that took this same decision.")
    last_seen_at: UtcDatetime | None


DecisionPage = page_of(Decision)


class SampleIn(Input):
    t: float = Field(ge=0, le=10**9, description="Seconds from the start of the series.")
    value: float = Field(ge=0, le=10**12)

    @field_validator("t", "value", mode="before")
    @classmethod
    def _finite(cls, value):
        if isinstance(value, bool):
            raise ValueError("Input should be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("Input should be a finite number")
        return float(value) if isinstance(value, int) else value


class SimulateIn(Input):
    current: int = Field(ge=0, le=service.MAX_CLUSTER_WORKERS,
                         description="Members at the start of the series.")
    samples: list[SampleIn] = Field(min_length=1, max_length=MAX_SIMULATED_SAMPLES, description=(
        f"One sample per evaluation (the controller evaluates every {EVALUATION_SECONDS} s),"
        " t increasing."))


class SimulatedDecision(Output):
    t: float
    current: int
    desired: int
    action: Literal[DECISION_ACTIONS]  # type: ignore[valid-type]
    reason: str


class SimulateOut(Output):
    decisions: list[SimulatedDecision]


PolicyQuery = list_query("PolicyQuery", policies, (
    ApiFilter("mode", "mode", Mode),
    ApiFilter("target_type", "target_type", Literal[POLICY_TARGETS]),  # type: ignore[valid-type]
    ApiFilter("tenant_id", "tenant", int, "Only this tenant's policies."),
))


def _visible_policy(policy_id: int):
    policy = service.visible_policy(policy_id)
    if policy is None:
        raise not_found()
    return policy


def _managed_policy(policy_id: int):
    policy = _visible_policy(policy_id)
    if not service.may_change(policy):
        raise not_found()
    return policy


def _fields(body) -> service.PolicyFields:
    return service.PolicyFields(**body.model_dump(exclude_unset=True))


@api.operation("GET", "/scaling-policies", summary="List scaling policies", tags=POLICY_TAGS,
               access=READ_POLICIES, query=PolicyQuery, response=PolicyPage)
def list_scaling_policies(query):
    return run(policies, query)


@api.operation("GET", "/scaling-policies/{policy_id}", summary="Get a scaling policy",
               tags=POLICY_TAGS, access=READ_POLICIES, response=Policy)
def get_scaling_policy(policy_id: int):
    return _visible_policy(policy_id)


@api.operation("POST", "/scaling-policies", summary="Create a scaling policy",
               tags=POLICY_TAGS, access=WRITE_POLICIES, body=PolicyCreate, response=Policy,
               status=201, errors=(409,))
def create_scaling_policy(body: PolicyCreate):
    """One policy per VM group or cluster. A VM group's is evaluated every 30 s (HPA
    semantics); a cluster's worker pool is driven by cluster-autoscaler within min and max."""
    policy = service.create_policy(_user(), _fields(body))
    return policy, {"Location": url_for("api.get_scaling_policy", policy_id=policy.id)}


@api.operation("PATCH", "/scaling-policies/{policy_id}", summary="Change a scaling policy",
               tags=POLICY_TAGS, access=WRITE_POLICIES, body=PolicyChange, response=Policy)
def change_scaling_policy(policy_id: int, body: PolicyChange):
    """Fields left out stay. Changing the mode clears the backoff and the window."""
    policy = _managed_policy(policy_id)
    service.update_policy(policy, _user(), _fields(body))
    return policy


@api.operation("DELETE", "/scaling-policies/{policy_id}", summary="Delete a scaling policy",
               tags=POLICY_TAGS, access=WRITE_POLICIES, status=204)
def delete_scaling_policy(policy_id: int):
    """The target keeps its size; the policy's decisions go with it."""
    service.delete_policy(_managed_policy(policy_id), _user())


@api.operation("GET", "/scaling-policies/{policy_id}/decisions",
               summary="A policy's decisions, newest first", tags=POLICY_TAGS,
               access=READ_POLICIES, query=Paging, response=DecisionPage)
def list_scaling_decisions(policy_id: int, query: Paging):
    from portal.api.listing import total

    stmt = service.decisions_query(_visible_policy(policy_id))
    items = list(db.session.scalars(stmt.limit(query.limit).offset(query.offset)))
    return {"items": items, "total": total(stmt)}


@api.operation("POST", "/scaling-policies/{policy_id}/simulate",
               summary="Replay a metric series against a policy", tags=POLICY_TAGS,
               access=READ_POLICIES, body=SimulateIn, response=SimulateOut, idempotent=False,
               errors=(409,))
def simulate_scaling_policy(policy_id: int, body: SimulateIn):
    """What the policy would decide at each sample, starting from ``current`` members,
    each decided change taking effect at once. Nothing is read or written: no side
    effects, so it is not keyed (any token that may read the policy may ask)."""
    policy = _visible_policy(policy_id)
    times = [sample.t for sample in body.samples]
    if any(later <= earlier for earlier, later in zip(times, times[1:], strict=False)):
        raise ApiError("validation_error", "samples: t must increase from one sample to the "
                                           "next.", errors={"samples": "t must increase."})
    try:
        decisions = service.simulate(policy, body.current,
                                     [(s.t, s.value) for s in body.samples])
    except service.PolicyError as error:
        raise ApiError(CONFLICT, str(error)) from None
    return {"decisions": decisions}
