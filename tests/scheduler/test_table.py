"""The vectorised core decides exactly what the one-server-at-a-time formulas decide: the
array twin of every strategy scores bit for bit like its scalar function, rounding matches
round(), and a plan over a HostTable equals the plan over the same hosts as a list."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.scheduler import (
    STRATEGIES,
    Host,
    HostTable,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    Strategy,
    plan,
)
from portal.scheduler.table import round_scores
from tests.scheduler.generators import clusters, constraints, demands, headrooms, hosts, node_lists

bounded = settings(max_examples=150, deadline=None)


@bounded
@given(hosts(min_size=1, max_size=12), demands(), st.sampled_from(sorted(STRATEGIES)))
def test_every_strategy_scores_every_server_with_room_bit_for_bit_like_its_formula(
    group, demand, strategy
):
    table = HostTable.of(group)
    score = STRATEGIES[strategy].scorer(table)
    array = score.array(table.free, table.total, demand)
    reference = STRATEGIES[strategy].scorer(group)  # the same function, from a plain list
    for i, host in enumerate(group):
        if demand.fits_in(host.free):
            # Float equality is equality of the exact values: the same bits (or ±0).
            assert array[i] == reference(host.free, host.total, demand), (host, demand)


# Plain floats, dyadic fractions (exact halves at some decimal), and values a hair from a
# half at the ninth decimal: where rint(s * 1e9) and round() could disagree.
floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
halves = st.builds(lambda k, e: (2 * k + 1) / 2**e, st.integers(-10**6, 10**6), st.integers(1, 40))
near_halves = st.integers(-10**9, 10**9).map(lambda n: n / 1e9 + 5e-10)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(floats, halves, near_halves), min_size=1, max_size=50))
def test_scores_are_rounded_exactly_as_round_rounds_them(values):
    rounded = round_scores(np.array(values, dtype=np.float64))
    assert rounded.tolist() == [round(v, 9) for v in values]


def test_rounding_keeps_infinities():
    assert round_scores(np.array([math.inf, -math.inf])).tolist() == [math.inf, -math.inf]


requests = st.builds(
    PlacementRequest,
    st.one_of(node_lists(), clusters()),
    st.sampled_from(sorted(STRATEGIES)),
    constraints(),
    st.sampled_from(["soft", "hard", "none"]),
)


@bounded
@given(requests, hosts(), headrooms())
def test_a_table_plans_exactly_like_the_list_of_its_hosts(request, group, headroom):
    table = HostTable.of(group)
    free_before = table.free.copy()
    assert plan(request, table, headroom) == plan(request, list(group), headroom)
    assert (table.free == free_before).all(), "plan() changed the caller's table"


@bounded
@given(hosts(max_size=10))
def test_a_table_is_the_sequence_of_its_hosts(group):
    table = HostTable.of(group)
    assert len(table) == len(group)
    assert list(table) == group
    assert table[:] == group
    if group:
        assert table[-1] == group[-1]
        # Hosts rebuilt from the columns equal the originals.
        rebuilt = HostTable.from_rows(
            [(h.id, h.name, h.region, h.dc, h.rack, *h.total.as_tuple(), *h.free.as_tuple())
             for h in group]
        )
        assert list(rebuilt) == group
        picked = table.subset(np.array([i % 2 == 0 for i in range(len(group))]))
        assert list(picked) == group[::2]


def test_set_free_records_a_placement_and_the_next_plan_sees_it():
    a = Host(1, "bm-a", "north", "dc1", "r1", Resources(8, 32, 100), Resources(4, 16, 50))
    b = Host(2, "bm-b", "north", "dc1", "r2", Resources(8, 32, 100), Resources(8, 32, 100))
    table = HostTable.of([a, b])
    vm = PlacementRequest((NodeDemand("standalone", Resources(4, 16, 50)),), "best_fit")
    assert plan(vm, table).assignments == (1,)
    table.set_free(0, Resources(0, 0, 0))
    assert table[0].free == Resources(0, 0, 0)
    assert plan(vm, table).assignments == (2,)


def test_empty_tables_refuse_like_empty_lists():
    vm = PlacementRequest((NodeDemand("standalone", Resources(1, 1, 1)),))
    from_rows = plan(vm, HostTable.from_rows([]))
    assert isinstance(from_rows, Refusal) and from_rows == plan(vm, [])


def test_a_strategy_without_an_array_twin_is_scored_one_server_at_a_time(monkeypatch):
    # Fewest free cores first, whatever else: a scalar-only strategy an outside suite adds.
    def scorer(hosts):
        return lambda free, total, demand: free.cpu - demand.cpu

    monkeypatch.setitem(STRATEGIES, "fewest_cores", Strategy("fewest_cores", "test", scorer))
    group = [
        Host(1, "bm-1", "n", "d", "r1", Resources(64, 64, 64), Resources(10, 64, 64)),
        Host(2, "bm-2", "n", "d", "r2", Resources(64, 64, 64), Resources(6, 1, 1)),
        Host(3, "bm-3", "n", "d", "r3", Resources(64, 64, 64), Resources(8, 64, 64)),
    ]
    result = plan(PlacementRequest((NodeDemand("standalone", Resources(4, 4, 4)),) * 2,
                                   "fewest_cores", anti_affinity="none"), HostTable.of(group))
    # bm-2 lacks memory; bm-3 (8 cores) wins, and with 4 cores left it wins again.
    assert isinstance(result, Plan) and result.assignments == (3, 3)
