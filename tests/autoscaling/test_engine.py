"""Golden tests of the pure engine: the Horizontal Pod Autoscaler's documented examples,
and the rules around them (warm-up, missing data, stabilisation, limits)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from portal.autoscaling.engine import (
    Member,
    Recommendation,
    Rules,
    evaluate,
    next_backoff,
    simulate,
)

NOW = datetime(2025, 3, 5, 12, 0, 0)
OLD = NOW - timedelta(hours=1)
RULES = Rules(min_size=1, max_size=20, target=0.5)


def group(*values, started=OLD, at=NOW):
    return [Member(i, started, None if v is None else (at - timedelta(seconds=10), v))
            for i, v in enumerate(values)]


def test_twice_the_target_doubles():
    """HPA: 200m measured against a 100m target doubles the replicas."""
    result = evaluate(RULES, group(1.0, 1.0, 1.0), NOW)
    assert (result.current, result.raw_desired, result.desired, result.action) == (
        3, 6, 6, "scale_up")
    assert result.limits == ()
    assert "3 × 1 / 0.5 → 6" in result.reason
    assert result.samples == 3 and result.sample_age == 10


def test_the_desired_size_is_rounded_up_both_ways():
    """HPA's ceil: 3 × 0.7 / 0.5 = 4.2 asks for 5 members; 4 × 0.3 / 0.5 = 2.4 keeps 3."""
    up = evaluate(RULES, group(0.7, 0.7, 0.7), NOW)
    assert (up.raw_desired, up.desired, up.action) == (5, 5, "scale_up")
    down = evaluate(RULES, group(0.3, 0.3, 0.3, 0.3), NOW)
    assert down.raw_desired == 3  # the stabilisation window then holds it at 4


@pytest.mark.parametrize("value", [0.45, 0.5, 0.55])
def test_within_tolerance_nothing(value):
    result = evaluate(RULES, group(value, value, value, value), NOW)
    assert (result.desired, result.action, result.wants_change) == (4, "none", False)
    assert "within 0.1" in result.reason


def test_scale_down_waits_out_the_window():
    """HPA: half the target halves the replicas — but only once the highest
    recommendation of the last 300 s allows it."""
    window: tuple = ()
    sizes = []
    for second in range(0, 331, 30):
        now = NOW + timedelta(seconds=second)
        load = 0.5 if second == 0 else 0.25
        result = evaluate(RULES, group(*[load] * 4, at=now), now, window)
        window = result.window
        sizes.append((second, result.raw_desired, result.desired, result.limits))
    assert sizes[0][1:3] == (4, 4)
    held = [s for s in sizes if 0 < s[0] < 300]
    assert held and all(raw == 2 and desired == 4 and "stabilization" in limits
                        for _, raw, desired, limits in held)
    # At 300 s the 4 recommended at t=0 has left the window (HPA: strictly newer than
    # now − 300 s count).
    assert sizes[10][:3] == (300, 2, 2)


def test_scale_up_is_immediate_even_after_low_recommendations():
    window = (Recommendation(NOW - timedelta(seconds=60), 2),)
    result = evaluate(RULES, group(1.0, 1.0), NOW, window)
    assert result.desired == 4 and result.action == "scale_up"


def test_warming_members_are_left_out_of_the_average_and_count_as_idle_on_the_way_up():
    """Two members at twice the target asked for two more; while those warm up (no load
    yet) the same load asks for nothing more: no overshoot to 8."""
    members = group(1.0, 1.0) + [Member(7, NOW - timedelta(seconds=60)),
                                 Member(8, NOW - timedelta(seconds=60), (NOW, 0.0))]
    result = evaluate(RULES, members, NOW)
    assert result.value == 1.0  # the warming members' 0.0 is not averaged
    assert (result.current, result.raw_desired, result.desired) == (4, 8, 4)
    assert result.limits == ("warmup",)
    assert [m["state"] for m in result.members] == ["counted", "counted", "warming", "warming"]


def test_no_scale_down_while_a_member_warms_up():
    members = group(0.1, 0.1) + [Member(9, NOW - timedelta(seconds=30))]
    result = evaluate(RULES, members, NOW)
    assert result.desired == 3 and result.limits == ("warmup",)


def test_missing_or_stale_data_never_scales_down():
    stale = [Member(5, OLD, (NOW - timedelta(seconds=600), 0.0))]
    result = evaluate(RULES, group(0.1, 0.1, None) + stale, NOW)
    assert (result.raw_desired, result.desired) == (1, 4)
    assert result.limits == ("missing_data",)
    assert "2 of 4 members in service sent no sample" in result.reason
    nothing = evaluate(RULES, group(None, None, None), NOW)
    assert (nothing.desired, nothing.limits, nothing.samples) == (3, ("no_data",), 0)


def test_missing_members_count_as_idle_on_the_way_up():
    result = evaluate(RULES, group(1.0, None, None, None), NOW)
    # Alone, 1.0 would ask for 8; counting the silent three as idle, 2 members' worth.
    assert result.desired == 4 and result.limits == ("missing_data",)
    result = evaluate(RULES, group(1.0, 1.0, 1.0, None), NOW)
    assert result.desired == 6 and result.action == "scale_up"


def test_min_and_max_clamp():
    capped = evaluate(RULES, group(6.0, 6.0), NOW)
    assert (capped.raw_desired, capped.desired, capped.limits) == (24, 20, ("max",))
    floor = Rules(min_size=3, max_size=10, target=0.5)
    assert evaluate(floor, [], NOW).desired == 3  # below min: up to min without data
    assert evaluate(floor, [], NOW).limits == ("no_data", "min")
    lowered = Rules(min_size=1, max_size=2, target=0.5)
    assert evaluate(lowered, group(0.5, 0.5, 0.5), NOW).desired == 2


def test_simulate_replays_a_series_with_each_change_taking_effect_at_once():
    samples = [(0, 1.0), (30, 0.5), (60, 0.25), (90, 0.25), (390, 0.25)]
    decisions = simulate(RULES, 2, samples)
    assert [(d.t, d.current, d.desired, d.action) for d in decisions] == [
        (0, 2, 4, "scale_up"), (30, 4, 4, "none"), (60, 4, 4, "none"), (90, 4, 4, "none"),
        (390, 4, 2, "scale_down")]
    assert "stabilisation" in decisions[2].reason


def test_backoff_doubles_from_five_to_thirty_minutes():
    steps, seconds = [], 0
    for _ in range(5):
        seconds = next_backoff(seconds)
        steps.append(seconds)
    assert steps == [300, 600, 1200, 1800, 1800]
