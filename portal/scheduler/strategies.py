"""Placement strategies: how to rank the servers that have room for one node.

A strategy is a name, a one-line summary the UI can show ("why this server"), and a score
function. ``plan()`` picks the server with the LOWEST score; ties break on server name, so
every plan is deterministic. Adding a strategy means adding one ``Strategy`` to
``STRATEGIES``; nothing else changes.

A score function receives the server's free capacity *before* placement, its total
capacity, and the node's demand (all ``Resources``); it is only called for servers where
the demand fits. It is the innermost loop of the scheduler — one call per server per
distinct demand — hence the unrolled arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.scheduler.data import Resources

ScoreFunction = Callable[["Resources", "Resources", "Resources"], float]


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    score: ScoreFunction


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


BEST_FIT = Strategy(
    "best_fit",
    "least remaining space first (fills busy servers, keeps empty ones whole)",
    normalised_remaining,
)
WORST_FIT = Strategy(
    "worst_fit",
    "most remaining space first (spreads load across servers)",
    worst_fit_score,
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (BEST_FIT, WORST_FIT)}
DEFAULT_STRATEGY: str = BEST_FIT.name
