"""Control planes: distinct servers always, distinct racks whenever possible (SPEC 3.4)."""

from __future__ import annotations

import itertools
import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.scheduler import (
    STRATEGIES,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
)
from tests.scheduler.generators import allowed, clusters, constraints, demands, hosts

bounded = settings(max_examples=150, deadline=None)
strategies = st.sampled_from(sorted(STRATEGIES))


def control_plane_hosts(request: PlacementRequest, result: Plan, group: list[Host]) -> list[Host]:
    by_id = {h.id: h for h in group}
    return [
        by_id[host_id]
        for node, host_id in zip(request.nodes, result.assignments, strict=True)
        if node.role == "control-plane"
    ]


def most_racks_possible(demand: Resources, count: int, request, group) -> int | None:
    """Brute force: the most distinct racks any choice of distinct servers reaches (servers
    without a rack share one unknown rack), None when no choice exists."""
    fitting = [h for h in group if allowed(h, request.constraints) and demand.fits_in(h.free)]
    best = None
    for chosen in itertools.combinations(fitting, count):
        racks = len({h.rack for h in chosen})
        best = racks if best is None else max(best, racks)
    return best


def assert_spread_is_true(spread: str, chosen: list[Host]) -> None:
    """The control planes' clause comes first; other roles' clauses follow after "; "."""
    n = len(chosen)
    per_rack = Counter(h.rack for h in chosen)

    def leads(clause: str) -> bool:
        return spread == clause or spread.startswith(clause + "; ")

    if n == 1:
        assert leads("1 control plane on 1 server"), spread
    elif None in per_rack:
        assert spread.startswith(f"{n} control planes on {n} servers; rack spread unknown")
        assert f"{per_rack[None]} server" in spread
    elif len(per_rack) == n:
        assert leads(f"{n} control planes on {n} racks"), spread
    else:
        match = re.match(
            rf"{n} control planes on {n} servers, (\d+) racks? — "
            rf"a rack failure would take down (\d+) of {n}(; |$)",
            spread,
        )
        assert match, spread
        assert int(match[1]) == len(per_rack)
        assert int(match[2]) == max(per_rack.values())


@bounded
@given(clusters(max_workers=0), hosts(max_size=7), strategies, constraints())
def test_control_planes_spread_over_as_many_racks_as_any_choice_allows(
    nodes, group, strategy, where
):
    request = PlacementRequest(nodes, strategy, where)
    possible = most_racks_possible(nodes[0].resources, len(nodes), request, group)
    result = plan(request, group)
    if possible is None:
        assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
        return
    assert isinstance(result, Plan), result.message
    chosen = control_plane_hosts(request, result, group)
    assert len({h.id for h in chosen}) == len(nodes)
    assert len({h.rack for h in chosen}) == possible
    assert_spread_is_true(result.spread, chosen)


@bounded
@given(clusters(), hosts(max_size=7), strategies, constraints())
def test_a_cluster_plan_keeps_control_planes_apart_and_says_how_far(nodes, group, strategy, where):
    request = PlacementRequest(nodes, strategy, where)
    result = plan(request, group)
    if isinstance(result, Refusal):
        return
    chosen = control_plane_hosts(request, result, group)
    assert len({h.id for h in chosen}) == len(chosen)
    assert_spread_is_true(result.spread, chosen)


@bounded
@given(st.lists(demands(), min_size=2, max_size=3), hosts(max_size=6))
def test_control_planes_of_different_sizes_are_matched_when_any_matching_exists(sizes, group):
    request = PlacementRequest(tuple(NodeDemand("control-plane", r) for r in sizes))
    feasible = any(
        all(r.fits_in(h.free) for r, h in zip(sizes, chosen, strict=True))
        for chosen in itertools.permutations(group, len(sizes))
    )
    result = plan(request, group)
    assert isinstance(result, Plan) == feasible
    if feasible:
        assert len(set(result.assignments)) == len(sizes)


def server(host_id: int, rack: str | None, free: Resources) -> Host:
    return Host(host_id, f"bm-{host_id:02d}", "north", "dc1", rack, Resources(32, 128, 1000), free)


CP = NodeDemand("control-plane", Resources(4, 16, 100))
WORKER = NodeDemand("worker", Resources(8, 32, 200))


def test_rack_diversity_beats_the_tightest_servers():
    # best_fit alone would take bm-01 and bm-02, both on rack a.
    group = [
        server(1, "a", Resources(4, 16, 100)),
        server(2, "a", Resources(4, 16, 100)),
        server(3, "b", Resources(32, 128, 1000)),
        server(4, "c", Resources(32, 128, 1000)),
    ]
    result = plan(PlacementRequest((CP,) * 3, "best_fit"), group)
    assert sorted(result.assignments) == [1, 3, 4]
    assert result.spread == "3 control planes on 3 racks"


def test_without_enough_racks_control_planes_share_as_few_as_possible():
    group = [server(i, rack, Resources(32, 128, 1000)) for i, rack in enumerate("aabbb", 1)]
    result = plan(PlacementRequest((CP,) * 3), group)
    assert result.spread == (
        "3 control planes on 3 servers, 2 racks — a rack failure would take down 2 of 3"
    )


def test_a_small_control_plane_leaves_the_only_big_server_to_the_big_one():
    # The small one scores better on bm-01, but only bm-01 can take the big one.
    group = [server(1, "a", Resources(16, 64, 500)), server(2, "b", Resources(4, 128, 1000))]
    small = NodeDemand("control-plane", Resources(4, 16, 100))
    big = NodeDemand("control-plane", Resources(16, 64, 500))
    result = plan(PlacementRequest((small, big), "best_fit"), group)
    assert result.assignments == (2, 1)


def test_assignments_come_back_in_request_order():
    group = [server(i, rack, Resources(32, 128, 1000)) for i, rack in enumerate("abc", 1)]
    nodes = (WORKER, CP, WORKER, CP, CP)
    result = plan(PlacementRequest(nodes), group)
    cps = [result.assignments[i] for i in (1, 3, 4)]
    assert sorted(cps) == [1, 2, 3]
    assert len(result.assignments) == 5


def test_too_few_servers_for_distinct_control_planes_is_explained_with_numbers():
    group = [server(i, "a", Resources(8, 32, 100)) for i in range(1, 4)] + [
        server(i, "b", Resources(2, 32, 100)) for i in range(4, 6)
    ]
    demand = Resources(8, 32, 100)
    result = plan(
        PlacementRequest((NodeDemand("control-plane", demand),) * 5),
        group,
        inactive={"maintenance": 3},
    )
    assert result.code == "insufficient_capacity"
    assert result.message.startswith(
        "5 control planes need 5 distinct servers; only 3 servers have room for "
        "cpu 8 / memory 32 GiB / storage 100 GiB."
    )
    assert result.details["reasons"] == {"maintenance": 3, "has room": 3, "not enough cpu": 2}
    assert result.details["hosts_considered"] == 8


def test_workers_that_do_not_fit_after_the_control_planes_refuse_the_whole_cluster():
    group = [server(i, rack, Resources(8, 32, 300)) for i, rack in enumerate("abc", 1)]
    result = plan(PlacementRequest((CP,) * 3 + (WORKER,) * 2), group)
    assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    assert "node 4 of 5" in result.message and "nothing was reserved" in result.message
    assert result.details["placed"] == 3
