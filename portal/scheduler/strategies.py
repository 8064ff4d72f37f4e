"""Placement strategies: how to rank the servers that have room for one node.

A strategy is a name, a one-line summary the UI can show ("why this server"), and a score
function of plain integers. ``plan()`` picks the server with the LOWEST score; ties break
on server name, so every plan is deterministic. Adding a strategy means adding one
``Strategy`` to ``STRATEGIES``; nothing else changes.

The score function receives three ``(cpu, memory, storage)`` tuples of ints: the server's
free capacity *before* placement, its total capacity, and the node's demand. It is only
called for servers where the demand fits. Tuples instead of ``Resources`` because this is
the innermost loop of the scheduler (one call per server per distinct demand).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Vector = tuple[int, int, int]
ScoreFunction = Callable[[Vector, Vector, Vector], float]


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    score: ScoreFunction


def _normalised_remaining(free: Vector, total: Vector, demand: Vector) -> float:
    """SPEC 3.3: sum over dimensions of remaining_d / total_d after placement.

    Dimensions with total 0 are skipped: a server without storage has nothing to normalise.
    """
    score = 0.0
    for f, t, d in zip(free, total, demand, strict=True):
        if t:
            score += (f - d) / t
    return score


def best_fit_score(free: Vector, total: Vector, demand: Vector) -> float:
    """Least remaining space first: keeps emptier servers whole for large flavors."""
    return _normalised_remaining(free, total, demand)


def worst_fit_score(free: Vector, total: Vector, demand: Vector) -> float:
    """Most remaining space first: spreads load, at the cost of fragmenting every server."""
    return -_normalised_remaining(free, total, demand)


BEST_FIT = Strategy(
    "best_fit",
    "least remaining space first (fills busy servers, keeps empty ones whole)",
    best_fit_score,
)
WORST_FIT = Strategy(
    "worst_fit",
    "most remaining space first (spreads load across servers)",
    worst_fit_score,
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (BEST_FIT, WORST_FIT)}
DEFAULT_STRATEGY: str = BEST_FIT.name
