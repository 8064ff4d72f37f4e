"""Anti-affinity in the planning core (SPEC 8.2): the nodes of one request plus ``occupied``
form one set; ``hard`` allows one member per server, ``soft`` spreads as far as room allows,
``none`` packs. Control planes keep their own rule; a bastion avoids them."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.scheduler import (
    STRATEGIES,
    Constraints,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
)
from portal.scheduler.explain import MEMBER
from tests.scheduler.generators import (
    allowed,
    constraints,
    demands,
    hosts,
    node_lists,
    reference_sequence,
)

bounded = settings(max_examples=150, deadline=None)
modes = st.sampled_from(["soft", "hard", "none"])
every_strategy = st.sampled_from(sorted(STRATEGIES))


def occupancy(group: list[Host]):
    """Some of the group's servers already holding members (and an id outside the group)."""
    ids = [h.id for h in group] + [999_999]
    return st.dictionaries(st.sampled_from(ids), st.integers(0, 3), max_size=4)


def server(i: int, rack: str | None = None, free: Resources | None = None) -> Host:
    total = Resources(32, 128, 1000)
    return Host(i, f"s{i:02}", "north", "dc1", rack or f"r{i % 3}", total, free or total)


WORKER = NodeDemand("worker", Resources(4, 16, 50))
CONTROL_PLANE = NodeDemand("control-plane", Resources(4, 16, 50))
BASTION = NodeDemand("bastion", Resources(1, 2, 10))


# --- properties ------------------------------------------------------------------------------


@bounded
@given(st.data(), node_lists(max_size=8), hosts(max_size=6), modes, constraints())
def test_every_mode_places_exactly_as_spec_8_2_reads(data, nodes, group, mode, where):
    """Against a brute force: hard skips servers with a member, soft ranks by members
    first, none by the score alone (the placement before SPEC 8.2)."""
    occupied = data.draw(occupancy(group))
    strategy = data.draw(st.sampled_from(["best_fit", "worst_fit"]))
    request = PlacementRequest(nodes, strategy, where, anti_affinity=mode, occupied=occupied)
    expected = reference_sequence(request, group)
    result = plan(request, group)
    if expected is None:
        assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    else:
        assert isinstance(result, Plan), result.message
        assert list(result.assignments) == expected


@bounded
@given(demands(), st.integers(1, 12), hosts(min_size=1, max_size=8), every_strategy)
def test_soft_spreads_over_distinct_servers_whenever_enough_have_room(
    demand, count, group, strategy
):
    request = PlacementRequest((NodeDemand("worker", demand),) * count, strategy)
    with_room = [h for h in group if demand.fits_in(h.free)]
    result = plan(request, group)
    if len(with_room) >= count:
        assert isinstance(result, Plan), result.message
        assert len(set(result.assignments)) == count
        if count > 1:
            assert f"{count} workers on {count} servers" in result.spread


@bounded
@given(
    st.integers(1, 6).flatmap(lambda k: st.tuples(st.just(k), st.integers(k, 4 * k))),
    every_strategy,
)
def test_soft_piles_up_evenly_when_servers_are_few(sizes, strategy):
    servers, count = sizes
    group = [server(i) for i in range(1, servers + 1)]  # each holds 8 workers
    result = plan(PlacementRequest((WORKER,) * count, strategy), group)
    assert isinstance(result, Plan)
    per_server = Counter(result.assignments)
    assert len(per_server) == servers
    assert max(per_server.values()) == math.ceil(count / servers)


@bounded
@given(st.data(), demands(), st.integers(1, 8), hosts(max_size=8), every_strategy)
def test_hard_places_one_per_server_or_refuses_with_the_count(data, demand, count, group, strategy):
    occupied = data.draw(occupancy(group))
    request = PlacementRequest(
        (NodeDemand("worker", demand),) * count,
        strategy,
        anti_affinity="hard",
        occupied=occupied,
    )
    free_of_members = [h for h in group if demand.fits_in(h.free) and not occupied.get(h.id)]
    result = plan(request, group)
    if len(free_of_members) >= count:
        assert isinstance(result, Plan), result.message
        assert len(set(result.assignments)) == count
        assert not any(occupied.get(i) for i in result.assignments)
        return
    assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    # Every server that holds a member — before or by this request — is counted as such.
    holding = {h.id for h in group if occupied.get(h.id)} | {h.id for h in free_of_members}
    if holding:
        assert result.details["reasons"][MEMBER] == len(holding)
        assert f"{len(holding)} host" in result.message and MEMBER in result.message
    assert sum(result.details["reasons"].values()) == result.details["hosts_considered"]


@bounded
@given(st.data(), node_lists(max_size=6), hosts(max_size=7), modes, every_strategy, constraints())
def test_the_order_of_hosts_never_changes_an_anti_affine_plan(
    data, nodes, group, mode, strategy, where
):
    occupied = data.draw(occupancy(group))
    request = PlacementRequest(nodes, strategy, where, anti_affinity=mode, occupied=occupied)
    shuffled = list(group)
    random.Random(data.draw(st.integers())).shuffle(shuffled)
    assert plan(request, group) == plan(request, shuffled)


@bounded
@given(demands(), hosts(max_size=6), every_strategy, constraints())
def test_a_single_vm_goes_to_the_same_server_whatever_the_setting(demand, group, strategy, where):
    results = {
        mode: plan(
            PlacementRequest((NodeDemand("standalone", demand),), strategy, where, mode), group
        )
        for mode in ("soft", "hard", "none")
    }
    assert results["soft"] == results["hard"] == results["none"]


@bounded
@given(
    st.integers(1, 3).map(lambda n: (CONTROL_PLANE,) * (2 * n - 1)),
    st.integers(0, 4),
    hosts(min_size=1, max_size=7),
    modes,
    every_strategy,
)
def test_a_bastion_shares_a_control_planes_server_only_when_no_other_has_room(
    cps, workers, group, mode, strategy
):
    request = PlacementRequest((*cps, *(WORKER,) * workers, BASTION), strategy, anti_affinity=mode)
    result = plan(request, group)
    if isinstance(result, Refusal):
        return
    cp_servers = set(result.assignments[: len(cps)])
    bastion_server = result.assignments[-1]
    if bastion_server in cp_servers:
        used = Counter(result.assignments[:-1])
        taken = {h.id: Resources.zero() for h in group}
        for node, host_id in zip(request.nodes[:-1], result.assignments[:-1], strict=True):
            taken[host_id] += node.resources
        others = [
            h
            for h in group
            if h.id not in cp_servers
            and BASTION.resources.fits_in(h.free - taken[h.id])
            and not (mode == "hard" and used[h.id])
        ]
        assert others == []
        assert "bastion on a control plane's server" in result.spread
    else:
        assert "bastion apart from the control planes" in result.spread


@bounded
@given(st.data(), node_lists(max_size=6), hosts(max_size=6), modes, constraints())
def test_an_anti_affine_plan_stays_within_free_capacity_and_constraints(
    data, nodes, group, mode, where
):
    occupied = data.draw(occupancy(group))
    request = PlacementRequest(nodes, constraints=where, anti_affinity=mode, occupied=occupied)
    result = plan(request, group)
    if isinstance(result, Refusal):
        return
    by_id = {h.id: h for h in group}
    taken: dict[int, Resources] = {}
    for node, host_id in zip(nodes, result.assignments, strict=True):
        assert allowed(by_id[host_id], where)
        taken[host_id] = taken.get(host_id, Resources.zero()) + node.resources
    for host_id, amount in taken.items():
        assert amount.fits_in(by_id[host_id].free)
    if mode == "hard":
        assert len(taken) == len(nodes)
        assert not any(occupied.get(i) for i in taken)


# --- examples a user reads -------------------------------------------------------------------


def test_a_cluster_spreads_every_role_and_says_so():
    group = [server(i) for i in range(1, 17)]
    result = plan(PlacementRequest((CONTROL_PLANE,) * 3 + (WORKER,) * 12 + (BASTION,)), group)
    assert isinstance(result, Plan)
    assert len(set(result.assignments)) == 16
    assert result.spread == (
        "3 control planes on 3 racks; 12 workers on 12 servers; "
        "bastion apart from the control planes"
    )


def test_twelve_workers_on_five_servers_hold_at_most_three_each():
    result = plan(PlacementRequest((WORKER,) * 12), [server(i) for i in range(1, 6)])
    assert isinstance(result, Plan)
    assert sorted(Counter(result.assignments).values()) == [2, 2, 2, 3, 3]
    assert result.spread == "12 workers on 5 servers, at most 3 on one"


def test_three_identical_vms_requested_together_land_on_three_servers():
    vm = NodeDemand("standalone", Resources(2, 4, 20))
    group = [server(i) for i in range(1, 5)]
    soft = plan(PlacementRequest((vm,) * 3), group)
    packed = plan(PlacementRequest((vm,) * 3, anti_affinity="none"), group)
    assert len(set(soft.assignments)) == 3 and soft.spread == "3 VMs on 3 servers"
    assert len(set(packed.assignments)) == 1
    assert packed.spread == "3 VMs on 1 server, at most 3 on one"


def test_a_single_vm_has_no_spread_to_report():
    result = plan(PlacementRequest((NodeDemand("standalone", Resources(2, 4, 20)),)), [server(1)])
    assert result.spread == ""


def test_scale_up_goes_to_servers_without_the_clusters_nodes():
    group = [server(i) for i in range(1, 7)]
    occupied = {1: 1, 2: 1, 3: 1, 4: 1}
    result = plan(PlacementRequest((WORKER,) * 2, occupied=occupied), group)
    assert set(result.assignments) == {5, 6}
    assert result.spread == "2 workers on 2 servers; none beside the set's 4 existing members"
    # 7 members on 6 servers: one server holds two, whichever the score prefers.
    crowded = plan(PlacementRequest((WORKER,) * 3, occupied=occupied), group)
    members = Counter(occupied) + Counter(crowded.assignments)
    assert sorted(members.values()) == [1, 1, 1, 1, 1, 2]
    shared = plan(PlacementRequest((WORKER,) * 3, occupied=occupied), group[:5])
    assert max((Counter(occupied) + Counter(shared.assignments)).values()) == 2
    assert shared.spread == (
        "3 workers on 2 servers, at most 2 on one; "
        "1 of 3 new nodes beside the set's 4 existing members"
    )


def test_hard_refusal_counts_the_servers_holding_a_member():
    group = [server(1), server(2), server(3, free=Resources(1, 1, 1)), server(4)]
    result = plan(
        PlacementRequest((WORKER,) * 2, anti_affinity="hard", occupied={1: 2, 4: 1}), group
    )
    assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    assert result.details["reasons"] == {MEMBER: 3, "not enough cpu": 1}
    assert "3 hosts: already holds a member of this set; 1 host: not enough cpu" in result.message
    assert "Hard anti-affinity allows one member of this set per server" in result.message
    assert "the set's 5 members" in result.message


def test_hard_control_planes_stay_off_servers_with_existing_members():
    group = [server(i) for i in range(1, 5)]
    result = plan(
        PlacementRequest((CONTROL_PLANE,) * 3, anti_affinity="hard", occupied={1: 1}), group
    )
    assert set(result.assignments) == {2, 3, 4}
    refused = plan(
        PlacementRequest((CONTROL_PLANE,) * 3, anti_affinity="hard", occupied={1: 1, 2: 1}),
        group,
    )
    assert isinstance(refused, Refusal) and refused.details["reasons"][MEMBER] == 2


def test_constraints_and_anti_affinity_compose():
    group = [server(i, rack="a" if i <= 2 else "b") for i in range(1, 5)]
    result = plan(
        PlacementRequest(
            (WORKER,) * 2, constraints=Constraints(racks=("a",)), anti_affinity="hard"
        ),
        group,
    )
    assert set(result.assignments) == {1, 2}


def test_bad_anti_affinity_input_is_a_validation_error():
    unknown = plan(PlacementRequest((WORKER,), anti_affinity="strict"), [server(1)])
    assert unknown.code == "validation_error" and unknown.details["field"] == "anti_affinity"
    assert "choose one of: soft, hard, none" in unknown.message
    negative = plan(PlacementRequest((WORKER,), occupied={1: -1}), [server(1)])
    assert negative.code == "validation_error" and negative.details["field"] == "occupied"
