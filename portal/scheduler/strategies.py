"""Placement strategies: how to rank the servers that have room for one node.

A strategy is a name, a one-line summary the UI can show ("why this server"), and a
``scorer``: given the group's servers, it returns the score function for this decision.
Most strategies score a server on its own and ignore the group; ``mix_fit`` first reads the
group's workload mix. ``plan()`` picks the server with the LOWEST score; ties break on
server name, so every plan is deterministic. Adding a strategy means adding one
``Strategy`` to ``STRATEGIES``; nothing else changes.

A score function receives the server's free capacity *before* placement, its total
capacity, and the node's demand (all ``Resources``); it is only called for servers where
the demand fits. It is the innermost loop of the scheduler — one call per server per
distinct demand — hence the unrolled arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.scheduler.data import Host, Resources

ScoreFunction = Callable[["Resources", "Resources", "Resources"], float]
Scorer = Callable[[Sequence["Host"]], ScoreFunction]


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    scorer: Scorer


def normalised_remaining(free: Resources, total: Resources, demand: Resources) -> float:
    """SPEC 3.3: the sum over dimensions of remaining_d / total_d after placement.

    Dimensions with total 0 are skipped: a server without storage has nothing to normalise.
    """
    score = 0.0
    if total.cpu:
        score += (free.cpu - demand.cpu) / total.cpu
    if total.memory:
        score += (free.memory - demand.memory) / total.memory
    if total.storage:
        score += (free.storage - demand.storage) / total.storage
    return score


def worst_fit_score(free: Resources, total: Resources, demand: Resources) -> float:
    return -normalised_remaining(free, total, demand)


def best_fit(hosts: Sequence[Host]) -> ScoreFunction:
    """Least remaining space first: keeps emptier servers whole for large flavors."""
    return normalised_remaining


def worst_fit(hosts: Sequence[Host]) -> ScoreFunction:
    """Most remaining space first: spreads load, at the cost of fragmenting every server."""
    return worst_fit_score


# How much one unit of newly stranded capacity weighs against one unit of remaining space.
STRANDING_WEIGHT = 2.0


def mix_fit(hosts: Sequence[Host]) -> ScoreFunction:
    """Best fit that avoids stranding capacity, judged against the group's own workload.

    Capacity is *stranded* when a server still has plenty of one resource but too little of
    another for the kind of VMs the group runs — memory left on a server whose CPU is gone.
    The kind of VMs the group runs is read from the group itself: the direction of its used
    capacity, u = sum over servers of (total - free). Relative to u, a free vector v can
    hold k(v) = min_d v_d / u_d "slices" of the workload; what exceeds k(v) * u is stranded.
    Placing demand d on a server changes its stranded capacity by

        delta_d = (k(free) - k(free - d)) * u_d - d_d

    and the score is ``best_fit + 2 * sum_d delta_d / total_d`` (dimensions with total 0
    or no usage left out). So a memory-heavy VM goes where memory is in excess, a CPU-heavy
    one where CPU is, and among equally good fits the busiest server is filled first.

    Why this one: ``bench/packing.py`` offers long random flavor streams to 200 partly
    filled servers of five hardware shapes and counts VMs placed before the first refusal,
    against the longest prefix an exact MIP can place. Over 6 workloads × 7 seeds it reaches
    0.949 on average (best_fit 0.854, worst_fit 0.70, best fit + host-shape stranding
    penalty 0.918, L2 best fit 0.867, dot product / alignment ~0.75), and is never below
    best_fit or worst_fit on any workload. Using the group's used capacity as the workload
    shape was the step that mattered: the same penalty against each server's own shape, or
    the group's free or total capacity, lands at 0.85–0.93.
    """
    used_cpu = used_memory = used_storage = 0
    for host in hosts:
        used_cpu += host.total.cpu - host.free.cpu
        used_memory += host.total.memory - host.free.memory
        used_storage += host.total.storage - host.free.storage
    # Per-dimension 1/u_d; dimensions the group does not use do not limit k.
    inverse = [1 / u if u > 0 else 0.0 for u in (used_cpu, used_memory, used_storage)]
    if not any(inverse):
        return normalised_remaining
    inv_cpu, inv_memory, inv_storage = inverse
    used = (max(used_cpu, 0), max(used_memory, 0), max(used_storage, 0))
    u_cpu, u_memory, u_storage = used

    def slices(cpu: int, memory: int, storage: int) -> float:
        return min(
            cpu * inv_cpu if inv_cpu else float("inf"),
            memory * inv_memory if inv_memory else float("inf"),
            storage * inv_storage if inv_storage else float("inf"),
        )

    def score(free: Resources, total: Resources, demand: Resources) -> float:
        dc, dm, ds = demand.cpu, demand.memory, demand.storage
        rc, rm, rs = free.cpu - dc, free.memory - dm, free.storage - ds
        lost = slices(free.cpu, free.memory, free.storage) - slices(rc, rm, rs)
        result = 0.0
        if total.cpu:
            result += (rc + STRANDING_WEIGHT * (lost * u_cpu - dc)) / total.cpu
        if total.memory:
            result += (rm + STRANDING_WEIGHT * (lost * u_memory - dm)) / total.memory
        if total.storage:
            result += (rs + STRANDING_WEIGHT * (lost * u_storage - ds)) / total.storage
        return result

    return score


BEST_FIT = Strategy(
    "best_fit", "least remaining space first (fills busy servers, keeps empty ones whole)", best_fit
)
WORST_FIT = Strategy("worst_fit", "most remaining space first (spreads load)", worst_fit)
MIX_FIT = Strategy(
    "mix_fit",
    "best fit that keeps free capacity in the shape of the group's workload (least stranded)",
    mix_fit,
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (MIX_FIT, BEST_FIT, WORST_FIT)}
DEFAULT_STRATEGY: str = MIX_FIT.name
