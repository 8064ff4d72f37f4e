"""Refusals a user can act on: which check failed, with numbers (SPEC 3.1, 3.6).

Quota and capacity refusals are built here so that ``core`` reads as the placement
algorithm alone. Every capacity refusal carries ``details["reasons"]``: each server of the
group counted once, under the FIRST reason it fails in this fixed order — inactive status
(as reported by the caller), region, dc, rack constraints, holding a member of the request's
set under hard anti-affinity, then cpu, memory, storage; a
server that fails none is counted as "has room". So the counts always add up to
``details["hosts_considered"]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from portal.scheduler.data import DIMENSIONS, Constraints, Host, NodeDemand, Refusal, Resources

QUOTA_EXCEEDED = "quota_exceeded"
INSUFFICIENT_CAPACITY = "insufficient_capacity"
VALIDATION_ERROR = "validation_error"

HAS_ROOM = "has room"
REGION = "excluded by region constraint"
DC = "excluded by dc constraint"
RACK = "excluded by rack constraint"
MEMBER = "already holds a member of this set"
SHORT_OF = {d: f"not enough {d}" for d in DIMENSIONS}
_UNIT = {"cpu": "cores", "memory": "GiB", "storage": "GiB"}


def amount(dimension: str, value: int) -> str:
    """'8 cores', '32 GiB' — human units of the domain model."""
    unit = _UNIT[dimension]
    if unit == "cores" and value == 1:
        unit = "core"
    return f"{value} {unit}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def constraint_reason(host: Host, constraints: Constraints) -> str | None:
    """The constraint that keeps ``host`` out, or None when it is allowed."""
    if constraints.regions and host.region not in constraints.regions:
        return REGION
    if constraints.dcs and host.dc not in constraints.dcs:
        return DC
    if constraints.racks and host.rack not in constraints.racks:
        return RACK
    if host.rack is not None and host.rack in constraints.exclude_racks:
        return RACK
    return None


def capacity_reason(free: Resources, demand: Resources) -> str | None:
    if free.cpu < demand.cpu:
        return SHORT_OF["cpu"]
    if free.memory < demand.memory:
        return SHORT_OF["memory"]
    if free.storage < demand.storage:
        return SHORT_OF["storage"]
    return None


def quota_refusal(requested: Resources, headroom: Resources) -> Refusal | None:
    """SPEC 3.1: the request as a whole must fit in the tenant's quota headroom."""
    every = {
        d: {"requested": getattr(requested, d), "headroom": getattr(headroom, d)}
        for d in DIMENSIONS
    }
    over = [d for d in DIMENSIONS if every[d]["requested"] > every[d]["headroom"]]
    if not over:
        return None
    parts = []
    for d in over:
        left = every[d]["headroom"]
        have = (
            f"{amount(d, left)} of quota left"
            if left >= 0
            else f"no quota left (usage is already {amount(d, -left)} over the limit)"
        )
        parts.append(f"{d}: this request needs {amount(d, every[d]['requested'])}, {have}")
    first = over[0]
    return Refusal(
        QUOTA_EXCEEDED,
        "Quota exceeded in this group — " + "; ".join(parts) + ".",
        {"dimension": first, **every[first], "all": every},
    )


def count_reasons(
    hosts: Sequence[Host],
    free: Mapping[int, Resources],
    demand: Resources,
    constraints: Constraints,
    inactive: Mapping[str, int] | None,
    members: Mapping[int, int] | None = None,
) -> Counter[str]:
    """First failing reason per server of the group, ``free`` overriding ``host.free`` (the
    working copy after earlier nodes of the same request took their share). ``members``
    (hard anti-affinity only) counts the set's members per server id."""
    reasons: Counter[str] = Counter()
    for status, count in (inactive or {}).items():
        if count:
            reasons[status] += count
    members = members or {}
    for host in hosts:
        reason = (
            constraint_reason(host, constraints)
            or (MEMBER if members.get(host.id) else None)
            or capacity_reason(free.get(host.id, host.free), demand)
        )
        reasons[reason or HAS_ROOM] += 1
    return reasons


def largest_fit(hosts: Sequence[Host], constraints: Constraints, demand: Resources) -> dict | None:
    """Free capacity of the allowed server that comes closest to the demanded shape (the
    largest multiple of the demand it could hold), so a caller can suggest the largest flavor
    that fits now. None when the constraints allow no server at all."""

    def closeness(host: Host) -> tuple[float, int, str]:
        ratios = [
            getattr(host.free, d) / getattr(demand, d) for d in DIMENSIONS if getattr(demand, d)
        ]
        total = host.free.cpu + host.free.memory + host.free.storage
        return (min(ratios, default=0.0), total, host.name)

    allowed = [h for h in hosts if constraint_reason(h, constraints) is None]
    if not allowed:
        return None
    return max(allowed, key=closeness).free.as_dict()


def describe_reasons(reasons: Counter[str]) -> str:
    """'14 hosts: not enough memory; 3 hosts: maintenance' — most frequent first."""
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return "; ".join(f"{plural(n, 'host')}: {reason}" for reason, n in ordered if n)


def most_free(
    hosts: Sequence[Host], free: Mapping[int, Resources], constraints: Constraints, dimension: str
) -> int:
    """The most free ``dimension`` on any allowed server (0 when none is allowed)."""
    return max(
        (
            getattr(free.get(h.id, h.free), dimension)
            for h in hosts
            if constraint_reason(h, constraints) is None
        ),
        default=0,
    )


def capacity_refusal(
    *,
    headline: str,
    failed: NodeDemand,
    hosts: Sequence[Host],
    free: Mapping[int, Resources],
    constraints: Constraints,
    inactive: Mapping[str, int] | None,
    extra: dict | None = None,
    members: Mapping[int, int] | None = None,
) -> Refusal:
    """An ``insufficient_capacity`` refusal explaining why ``failed`` found no server."""
    reasons = count_reasons(hosts, free, failed.resources, constraints, inactive, members)
    # "The most free memory is 24 GiB" helps only when no server has room at all.
    short = [d for d in DIMENSIONS if reasons[SHORT_OF[d]] and not reasons[HAS_ROOM]]
    hints = "; ".join(
        f"the most free {d} on an allowed server is "
        f"{amount(d, most_free(hosts, free, constraints, d))}"
        f" (needed {amount(d, getattr(failed.resources, d))})"
        for d in short
    )
    message = f"{headline} Hosts in this group — {describe_reasons(reasons) or 'none'}."
    if hints:
        message += f" {hints[0].upper()}{hints[1:]}."
    details = {
        "reasons": dict(reasons.most_common()),
        # The hints as numbers: the most free on an allowed server, and what was needed.
        "short": {d: {"most_free": most_free(hosts, free, constraints, d),
                      "needed": getattr(failed.resources, d)} for d in short},
        "hosts_considered": sum(reasons.values()),
        "demand": failed.resources.as_dict(),
        "role": failed.role,
        "largest_fit": largest_fit(hosts, constraints, failed.resources),
        **(extra or {}),
    }
    return Refusal(INSUFFICIENT_CAPACITY, message, details)
