"""best_fit and worst_fit choose exactly what the SPEC formula chooses (SPEC 3.3)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.scheduler import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
)
from tests.scheduler.generators import (
    constraints,
    demands,
    hosts,
    node_lists,
    reference_sequence,
)

bounded = settings(max_examples=150, deadline=None)
spec_strategies = st.sampled_from(["best_fit", "worst_fit"])


def test_the_default_strategy_is_registered_with_the_two_named_by_the_spec():
    assert {"best_fit", "worst_fit", DEFAULT_STRATEGY} <= set(STRATEGIES)


@bounded
@given(demands(), hosts(), spec_strategies, constraints())
def test_a_single_node_goes_where_the_formula_says(demand, group, strategy, where):
    request = PlacementRequest((NodeDemand("standalone", demand),), strategy, where)
    expected = reference_sequence(request, group)
    result = plan(request, group)
    if expected is None:
        assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    else:
        assert isinstance(result, Plan) and list(result.assignments) == expected


@bounded
@given(node_lists(max_size=8), hosts(max_size=6), spec_strategies, constraints())
def test_nodes_are_placed_one_by_one_on_what_earlier_nodes_left(nodes, group, strategy, where):
    # Packing only: anti-affinity "none" is the placement before SPEC 8.2.
    request = PlacementRequest(nodes, strategy, where, anti_affinity="none")
    expected = reference_sequence(request, group)
    result = plan(request, group)
    if expected is None:
        assert isinstance(result, Refusal) and result.code == "insufficient_capacity"
    else:
        assert isinstance(result, Plan) and list(result.assignments) == expected


@bounded
@given(demands(), hosts(min_size=1), st.sampled_from(sorted(STRATEGIES)))
def test_every_strategy_takes_the_lowest_score_of_its_own_function(demand, group, strategy):
    score = STRATEGIES[strategy].scorer(group)
    fitting = [h for h in group if demand.fits_in(h.free)]
    result = plan(PlacementRequest((NodeDemand("standalone", demand),), strategy), group)
    if not fitting:
        assert isinstance(result, Refusal)
        return
    keys = {h.id: (round(score(h.free, h.total, demand), 9), h.name) for h in fitting}
    assert result.assignments[0] == min(keys, key=keys.__getitem__)


_ids = itertools.count(1)


SERVER = Resources(32, 128, 1000)


def host(name: str, free: Resources, total: Resources = SERVER) -> Host:
    return Host(next(_ids), name, "north", "dc1", "r1", total, free)


def test_best_fit_fills_the_busiest_server_and_worst_fit_the_emptiest():
    group = [
        host("busy", Resources(8, 32, 200)),
        host("half", Resources(16, 64, 500)),
        host("empty", Resources(32, 128, 1000)),
    ]
    vm = (NodeDemand("standalone", Resources(4, 16, 100)),)
    assert plan(PlacementRequest(vm, "best_fit"), group).assignments == (group[0].id,)
    assert plan(PlacementRequest(vm, "worst_fit"), group).assignments == (group[2].id,)


def test_equal_scores_go_to_the_first_server_by_name():
    group = [host(name, Resources(16, 64, 500)) for name in ("bm-03", "bm-01", "bm-02")]
    vm = (NodeDemand("standalone", Resources(4, 16, 100)),)
    for strategy in STRATEGIES:
        chosen = plan(PlacementRequest(vm, strategy), group).assignments[0]
        assert chosen == group[1].id, strategy


def test_a_dimension_of_total_zero_is_left_out_of_the_score():
    no_storage = host("diskless", Resources(8, 32, 0), Resources(32, 128, 0))
    roomy = host("roomy", Resources(9, 33, 900))
    vm = (NodeDemand("standalone", Resources(4, 16, 0)),)
    assert plan(PlacementRequest(vm, "best_fit"), [no_storage, roomy]).assignments == (
        no_storage.id,
    )


def test_the_default_puts_a_memory_heavy_vm_where_memory_would_otherwise_be_stranded():
    # best_fit fills bm-cpu's last memory and strands its 18 free cores; the default does not.
    memory_rich = host("bm-mem", Resources(4, 96, 500))
    cpu_rich = host("bm-cpu", Resources(20, 16, 500))
    busy = host("bm-busy", Resources(0, 0, 0))  # gives the group a balanced workload mix
    vm = (NodeDemand("standalone", Resources(2, 16, 100)),)
    group = [memory_rich, cpu_rich, busy]
    assert plan(PlacementRequest(vm, "best_fit"), group).assignments == (cpu_rich.id,)
    assert plan(PlacementRequest(vm), group).assignments == (memory_rich.id,)
