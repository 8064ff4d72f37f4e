"""A score function with a ``pick()`` chooses among the servers with room itself (how a
look-ahead strategy plugs into ``plan()``), after the core's preferences: a bastion still
avoids the control planes' servers, soft anti-affinity still spreads, hard still forbids."""

from __future__ import annotations

from portal.scheduler import (
    STRATEGIES,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Resources,
    Strategy,
    plan,
)
from portal.scheduler.strategies import BEST_FIT_SCORE, PickScore

SERVER = Resources(32, 128, 1000)


def group(n: int) -> list[Host]:
    return [Host(k + 1, f"bm-{k + 1:02d}", "north", "dc1", f"r{k}", SERVER, SERVER)
            for k in range(n)]


def last_by_name(free, total, candidates, demand, best, first_by_name):
    """Against best_fit's order: the candidate whose name comes last."""
    return int(max(candidates.tolist()))


def register(monkeypatch) -> str:
    score = PickScore(BEST_FIT_SCORE.scalar, BEST_FIT_SCORE.array, last_by_name)
    monkeypatch.setitem(STRATEGIES, "last_pick", Strategy("last_pick", "test", lambda h: score))
    return "last_pick"


def test_pick_chooses_among_the_servers_with_room(monkeypatch):
    name = register(monkeypatch)
    hosts = group(4)
    hosts[3] = Host(4, "bm-04", "north", "dc1", "r3", SERVER, Resources(2, 4, 10))  # no room
    small = NodeDemand("standalone", Resources(4, 8, 50))
    result = plan(PlacementRequest((small,), name), hosts)
    assert isinstance(result, Plan) and result.assignments == (3,)
    # best_fit alone takes the first by name among equal servers
    assert plan(PlacementRequest((small,), "best_fit"), hosts).assignments == (1,)


def test_pick_comes_after_the_core_preferences(monkeypatch):
    name = register(monkeypatch)
    node = Resources(4, 8, 50)
    soft = PlacementRequest((NodeDemand("standalone", node),) * 3, name, anti_affinity="soft",
                            occupied={3: 1})
    result = plan(soft, group(3))
    # server 3 holds a member: the first two go elsewhere, last by name first
    assert isinstance(result, Plan) and result.assignments == (2, 1, 3)
    hard = PlacementRequest((NodeDemand("standalone", node),) * 2, name, anti_affinity="hard",
                            occupied={2: 1})
    assert plan(hard, group(3)).assignments == (3, 1)
    cluster = PlacementRequest(
        (NodeDemand("control-plane", node), NodeDemand("bastion", node)), name
    )
    # the control plane takes server 3; the bastion avoids it although pick prefers it
    assert plan(cluster, group(3)).assignments == (3, 2)
