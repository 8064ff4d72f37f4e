"""Properties every plan must have, whatever the group looks like (SPEC 3)."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.scheduler import (
    DIMENSIONS,
    STRATEGIES,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
)
from tests.scheduler.generators import (
    allowed,
    clusters,
    constraints,
    headrooms,
    hosts,
    inactive_counts,
    node_lists,
)

CODES = {"quota_exceeded", "insufficient_capacity", "validation_error"}
bounded = settings(max_examples=150, deadline=None)

requests = st.builds(
    PlacementRequest,
    st.one_of(node_lists(), clusters()),
    st.sampled_from(sorted(STRATEGIES)),
    constraints(),
)


def used_per_host(request: PlacementRequest, result: Plan) -> dict[int, Resources]:
    used: dict[int, Resources] = {}
    for node, host_id in zip(request.nodes, result.assignments, strict=True):
        used[host_id] = used.get(host_id, Resources.zero()) + node.resources
    return used


@bounded
@given(requests, hosts(), headrooms())
def test_a_plan_places_every_node_within_free_capacity_quota_and_constraints(
    request, group, headroom
):
    result = plan(request, group, headroom)
    if isinstance(result, Refusal):
        assert result.code in CODES
        return
    assert len(result.assignments) == len(request.nodes)
    by_id = {h.id: h for h in group}
    for host_id, used in used_per_host(request, result).items():
        assert used.fits_in(by_id[host_id].free), (host_id, used)
        assert allowed(by_id[host_id], request.constraints)
    if headroom is not None:
        requested = sum((n.resources for n in request.nodes), Resources.zero())
        assert requested.fits_in(headroom)


@bounded
@given(requests, hosts(), headrooms(), inactive_counts(), st.randoms(use_true_random=False))
def test_the_order_of_hosts_does_not_change_the_result(
    request, group, headroom, inactive, rng: random.Random
):
    shuffled = list(group)
    rng.shuffle(shuffled)
    first = plan(request, group, headroom, inactive=inactive)
    assert plan(request, shuffled, headroom, inactive=inactive) == first
    assert plan(request, group, headroom, inactive=inactive) == first


@bounded
@given(requests, hosts(), headrooms(), inactive_counts())
def test_every_refusal_carries_its_code_and_numbers(request, group, headroom, inactive):
    result = plan(request, group, headroom, inactive=inactive)
    if isinstance(result, Plan):
        return
    requested = sum((n.resources for n in request.nodes), Resources.zero())
    if result.code == "quota_exceeded":
        details = result.details
        dimension = details["dimension"]
        assert details["requested"] == getattr(requested, dimension)
        assert details["headroom"] == getattr(headroom, dimension)
        assert details["requested"] > details["headroom"]
        assert dimension in result.message
        assert str(details["requested"]) in result.message
        for d in DIMENSIONS:
            assert details["all"][d] == {
                "requested": getattr(requested, d),
                "headroom": getattr(headroom, d),
            }
    elif result.code == "insufficient_capacity":
        reasons = result.details["reasons"]
        considered = len(group) + sum(inactive.values())
        assert result.details["hosts_considered"] == considered
        assert sum(reasons.values()) == considered
        for status, count in inactive.items():
            assert reasons.get(status, 0) == count
        assert result.message != "no valid host"
        assert str(result.details["demand"]["cpu"]) in result.message
    else:
        raise AssertionError(f"unexpected refusal {result}")


@bounded
@given(st.one_of(node_lists(), clusters()), hosts(), headrooms())
def test_quota_is_checked_before_capacity(nodes, group, headroom):
    result = plan(PlacementRequest(nodes), group, headroom)
    requested = sum((n.resources for n in nodes), Resources.zero())
    over_quota = headroom is not None and not requested.fits_in(headroom)
    assert (isinstance(result, Refusal) and result.code == "quota_exceeded") == over_quota


@bounded
@given(requests, hosts())
def test_capacity_reasons_count_each_host_under_its_first_failing_check(request, group):
    result = plan(request, group)
    if not (isinstance(result, Refusal) and result.code == "insufficient_capacity"):
        return
    if result.details["placed"] or result.details.get("control_planes", 1) > 1:
        return  # explained against a working copy or a set of distinct servers
    demand = Resources(**result.details["demand"])
    expected: Counter[str] = Counter()
    for host in group:
        if not allowed(host, request.constraints):
            continue
        for d in DIMENSIONS:
            if getattr(host.free, d) < getattr(demand, d):
                expected[f"not enough {d}"] += 1
                break
        else:
            expected["has room"] += 1
    reasons = result.details["reasons"]
    assert {k: v for k, v in reasons.items() if not k.startswith("excluded")} == dict(expected)
    assert "has room" not in reasons
