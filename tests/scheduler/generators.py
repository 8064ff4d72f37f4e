"""Hypothesis generators and brute-force references for the planning core's tests.

Capacities are kept small so that hypothesis explores the interesting cases (servers that
almost fit, ties, exhausted dimensions) and the brute-force references stay cheap; totals
are bounded so that distinct SPEC scores differ by far more than the core's tie resolution.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import assume
from hypothesis import strategies as st

from portal.scheduler import Constraints, Host, NodeDemand, PlacementRequest, Resources

REGIONS = ("north", "south")
DCS = ("dc1", "dc2")
RACKS = ("r1", "r2", "r3", "r4")
INACTIVE_STATUSES = ("maintenance", "offline", "decommissioned")


@st.composite
def hosts(draw: st.DrawFn, min_size: int = 0, max_size: int = 8) -> list[Host]:
    """Servers with unique ids and names, free <= total, some dimensions possibly 0."""
    count = draw(st.integers(min_size, max_size))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    names = draw(
        st.lists(
            st.text("abcxyz", min_size=1, max_size=3), min_size=count, max_size=count, unique=True
        )
    )
    result = []
    for host_id, name in zip(ids, names, strict=True):
        total = Resources(
            draw(st.integers(0, 32)), draw(st.integers(0, 128)), draw(st.integers(0, 500))
        )
        free = Resources(
            draw(st.integers(0, total.cpu)),
            draw(st.integers(0, total.memory)),
            draw(st.integers(0, total.storage)),
        )
        result.append(
            Host(
                id=host_id,
                name=name,
                region=draw(st.sampled_from(REGIONS)),
                dc=draw(st.sampled_from(DCS)),
                rack=draw(st.sampled_from((*RACKS, None))),
                total=total,
                free=free,
            )
        )
    return result


def demands(max_cpu: int = 12, max_memory: int = 48, max_storage: int = 200):
    return st.builds(
        Resources,
        st.integers(0, max_cpu),
        st.integers(0, max_memory),
        st.integers(0, max_storage),
    )


def _subsets(values: tuple[str, ...]):
    return st.lists(st.sampled_from(values), max_size=2, unique=True).map(tuple)


def constraints():
    return st.one_of(
        st.just(Constraints()),
        st.builds(Constraints, _subsets(REGIONS), _subsets(DCS), _subsets(RACKS), _subsets(RACKS)),
    )


def node_lists(roles=("standalone", "worker", "management", "bastion"), max_size: int = 6):
    return st.lists(
        st.builds(NodeDemand, st.sampled_from(roles), demands()), min_size=1, max_size=max_size
    ).map(tuple)


def clusters(max_control_planes: int = 4, max_workers: int = 5):
    """Control planes of one flavor (as the cluster wizard asks) plus a few workers."""
    return st.builds(
        lambda cp, n, workers: (NodeDemand("control-plane", cp),) * n + workers,
        demands(),
        st.integers(1, max_control_planes),
        st.lists(st.builds(NodeDemand, st.just("worker"), demands()), max_size=max_workers).map(
            tuple
        ),
    )


def inactive_counts():
    return st.dictionaries(st.sampled_from(INACTIVE_STATUSES), st.integers(0, 5), max_size=3)


def headrooms():
    return st.one_of(st.none(), demands(max_cpu=40, max_memory=160, max_storage=700))


def allowed(host: Host, c: Constraints) -> bool:
    """The SPEC's constraint rule, written independently of the core."""
    return (
        (not c.regions or host.region in c.regions)
        and (not c.dcs or host.dc in c.dcs)
        and (not c.racks or host.rack in c.racks)
        and not (host.rack is not None and host.rack in c.exclude_racks)
    )


def exact_score(free: Resources, total: Resources, demand: Resources) -> Fraction:
    """SPEC 3.3 in exact arithmetic: sum_d (free_d - demand_d) / total_d, total 0 skipped."""
    return sum(
        (
            Fraction(getattr(free, d) - getattr(demand, d), getattr(total, d))
            for d in ("cpu", "memory", "storage")
            if getattr(total, d)
        ),
        Fraction(0),
    )


# The core compares scores at 1e-9; exact scores closer than this (but not equal) are the
# one place where it may legitimately differ from exact arithmetic, so such draws are skipped.
TOO_CLOSE = Fraction(1, 10**8)


def reference_sequence(request: PlacementRequest, hosts: list[Host]) -> list[int] | None:
    """Brute force for requests without control planes: score every server for every node,
    in request order, on a working copy; min (best_fit) or max (worst_fit), name tiebreak.
    Anti-affinity (SPEC 8.2) as written there: ``hard`` skips servers holding a member of
    the set, ``soft`` ranks by members held before the score, ``none`` ignores the set."""
    sign = {"best_fit": 1, "worst_fit": -1}[request.strategy]
    free = {h.id: h.free for h in hosts}
    members = {h.id: request.occupied.get(h.id, 0) for h in hosts}
    mode = request.anti_affinity
    chosen = []
    for node in request.nodes:
        scores = {
            h.id: sign * exact_score(free[h.id], h.total, node.resources)
            for h in hosts
            if allowed(h, request.constraints)
            and node.resources.fits_in(free[h.id])
            and not (mode == "hard" and members[h.id])
        }
        if not scores:
            return None
        fewest = min(members[i] for i in scores) if mode == "soft" else 0
        if mode == "soft":
            scores = {i: s for i, s in scores.items() if members[i] == fewest}
        lowest = min(scores.values())
        assume(all(s == lowest or s - lowest > TOO_CLOSE for s in scores.values()))
        best = min((h for h in hosts if h.id in scores), key=lambda h: (scores[h.id], h.name, h.id))
        free[best.id] -= node.resources
        members[best.id] += 1
        chosen.append(best.id)
    return chosen
