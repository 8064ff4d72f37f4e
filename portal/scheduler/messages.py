"""The scheduler's refusals in the reader's language.

The core (`core.py`, `explain.py`) stays pure: it returns a Refusal whose ``code`` and
``details`` are data — which check failed, with the numbers — and an English ``message``
for logs and old callers. This module words that data with the translation layer, for the
pages and the API's problem ``detail``; a refusal it has no sentence for keeps the core's
message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import format_decimal

from portal.i18n import _, _n
from portal.scheduler.data import DIMENSIONS, Refusal
from portal.scheduler.explain import (
    DC,
    HAS_ROOM,
    INSUFFICIENT_CAPACITY,
    MEMBER,
    QUOTA_EXCEEDED,
    RACK,
    REGION,
    SHORT_OF,
)
from portal.vms.labels import enum_label

NO_QUOTA = "no_quota"


@dataclass
class Said:
    message: str
    reasons: list[tuple[str, int]]  # (reason in words, servers), most frequent first


def amount(dimension: str, value: int) -> str:
    """'8 cores', '32 GiB'."""
    if dimension == "cpu":
        return _n("%(num)s core", "%(num)s cores", value)
    return _("%(n)s GiB", n=format_decimal(value))


def demand(resources: dict[str, int]) -> str:
    return _("%(cpu)s CPU, %(memory)s GiB memory, %(storage)s GiB storage",
             cpu=format_decimal(resources["cpu"]), memory=format_decimal(resources["memory"]),
             storage=format_decimal(resources["storage"]))


def dimension_name(dimension: str) -> str:
    return {"cpu": _("CPU"), "memory": _("memory"), "storage": _("storage")}[dimension]


def reason_label(reason: str) -> str:
    """A per-server reason of explain.count_reasons (a fixed code, or a server status)."""
    words = {
        HAS_ROOM: _("has room"),
        REGION: _("excluded by region constraint"),
        DC: _("excluded by dc constraint"),
        RACK: _("excluded by rack constraint"),
        MEMBER: _("already holds a member of this set"),
        SHORT_OF["cpu"]: _("not enough cpu"),
        SHORT_OF["memory"]: _("not enough memory"),
        SHORT_OF["storage"]: _("not enough storage"),
    }
    if reason in words:
        return words[reason]
    return enum_label("status", reason)


def _quota(details: dict[str, Any]) -> str:
    parts = []
    for d in DIMENSIONS:
        numbers = details.get("all", {}).get(d)
        if not numbers or numbers["requested"] <= numbers["headroom"]:
            continue
        left = numbers["headroom"]
        needed = amount(d, numbers["requested"])
        if left >= 0:
            parts.append(_("%(dimension)s: this request needs %(needed)s, %(left)s of quota left",
                           dimension=dimension_name(d), needed=needed, left=amount(d, left)))
        else:
            parts.append(_("%(dimension)s: this request needs %(needed)s, no quota left (usage "
                           "is already %(over)s over the limit)",
                           dimension=dimension_name(d), needed=needed, over=amount(d, -left)))
    return _("Quota exceeded in this group — %(parts)s.", parts=_("; ").join(parts))


def _headline(said: dict[str, Any]) -> str | None:
    kind = said.get("kind")
    if kind == "no_room":
        return _("No server in this group has room for %(demand)s.",
                 demand=demand(said["demand"]))
    if kind == "no_room_after_earlier":
        return _("No server has room for node %(node)s of %(nodes)s (%(role)s, %(demand)s) once "
                 "the nodes placed before it are counted; nothing was reserved.",
                 node=said["node"], nodes=said["nodes"], role=enum_label("vm_role", said["role"]),
                 demand=demand(said["demand"]))
    if kind == "hard_anti_affinity":
        return _("Hard anti-affinity allows one member of this set per server: no server without "
                 "a member is left for node %(node)s of %(nodes)s (%(role)s, %(demand)s); the "
                 "set's %(members)s members need as many servers with room. Nothing was "
                 "reserved.", node=said["node"], nodes=said["nodes"],
                 role=enum_label("vm_role", said["role"]), demand=demand(said["demand"]),
                 members=said["members"])
    if kind == "no_room_control_plane":
        return _("No server in this group has room for the control plane (%(demand)s).",
                 demand=demand(said["demand"]))
    if kind == "control_planes_same":
        return _n("%(n)s control planes need %(n)s distinct servers; only %(num)s server has "
                  "room for %(demand)s.",
                  "%(n)s control planes need %(n)s distinct servers; only %(num)s servers have "
                  "room for %(demand)s.", said["fit"], n=said["control_planes"],
                  demand=demand(said["demand"]))
    if kind == "control_planes_mixed":
        return _("%(n)s control planes need %(n)s distinct servers; at most %(fit)s of them fit "
                 "on distinct servers at once.", n=said["control_planes"], fit=said["fit"])
    return None


def _capacity(refusal: Refusal) -> str | None:
    details = refusal.details
    headline = _headline(details.get("headline") or {})
    if headline is None:
        return None
    hints = [
        _("the most free %(dimension)s on an allowed server is %(free)s (needed %(needed)s)",
          dimension=dimension_name(d), free=amount(d, numbers["most_free"]),
          needed=amount(d, numbers["needed"]))
        for d, numbers in (details.get("short") or {}).items()
    ]
    reasons = _reasons(details)
    counted = _("; ").join(
        _n("%(num)s host: %(reason)s", "%(num)s hosts: %(reason)s", n, reason=reason)
        for reason, n in reasons
    )
    message = _("%(headline)s Hosts in this group — %(reasons)s.", headline=headline,
                reasons=counted or _("none"))
    if hints:
        hint = _("; ").join(hints)
        message += " " + _("%(hints)s.", hints=hint[:1].upper() + hint[1:])
    return message


def _reasons(details: dict[str, Any]) -> list[tuple[str, int]]:
    ordered = sorted((details.get("reasons") or {}).items(), key=lambda r: (-r[1], r[0]))
    return [(reason_label(reason), n) for reason, n in ordered if n]


def refusal_message(refusal: Refusal) -> str:
    """The refusal as one sentence in the reader's language."""
    message = None
    if refusal.code == QUOTA_EXCEEDED and "all" in refusal.details:
        message = _quota(refusal.details)
    elif refusal.code == INSUFFICIENT_CAPACITY:
        message = _capacity(refusal)
    elif refusal.code == NO_QUOTA and "tenant" in refusal.details:
        message = _("Tenant %(tenant)s has no quota in this group, so nothing can be placed "
                    "there. Ask an operator for a quota, or choose a group where the tenant "
                    "has one.", tenant=refusal.details["tenant"])
    return message or refusal.message


def refusal_text(refusal: Refusal) -> Said:
    """What a wizard shows: the sentence, and the per-server reasons in words."""
    return Said(refusal_message(refusal), _reasons(refusal.details))


def _spread_part(part: dict[str, Any]) -> str:
    kind, n = part["kind"], part.get("n", 0)
    if kind == "control_planes":
        if n == 1:
            return _("1 control plane on 1 server")
        if part["unknown"]:
            return _n("%(n)s control planes on %(n)s servers; rack spread unknown: %(num)s "
                      "server with no rack recorded",
                      "%(n)s control planes on %(n)s servers; rack spread unknown: %(num)s "
                      "servers with no rack recorded", part["unknown"], n=n)
        if part["racks"] == n:
            return _("%(n)s control planes on %(n)s racks", n=n)
        return _n("%(n)s control planes on %(n)s servers, %(num)s rack — a rack failure would "
                  "take down %(worst)s of %(n)s",
                  "%(n)s control planes on %(n)s servers, %(num)s racks — a rack failure would "
                  "take down %(worst)s of %(n)s", part["racks"], n=n, worst=part["worst"])
    if kind == "bastion":
        if part["shared"]:
            return _n("bastion on a control plane's server (no other server had room)",
                      "bastions on a control plane's server (no other server had room)", n)
        return _n("bastion apart from the control planes",
                  "bastions apart from the control planes", n)
    if kind == "role":
        nodes = {
            "worker": _n("%(num)s worker", "%(num)s workers", n),
            "management": _n("%(num)s management node", "%(num)s management nodes", n),
        }.get(part["role"]) or _n("%(num)s VM", "%(num)s VMs", n)
        servers = _n("%(num)s server", "%(num)s servers", part["servers"])
        if part["servers"] < n:
            return _("%(nodes)s on %(servers)s, at most %(most)s on one", nodes=nodes,
                     servers=servers, most=part["most"])
        return _("%(nodes)s on %(servers)s", nodes=nodes, servers=servers)
    existing = _n("%(num)s existing member", "%(num)s existing members", part["existing"])
    if part["shared"]:
        return _n("%(shared)s of %(num)s new node beside the set's %(existing)s",
                  "%(shared)s of %(num)s new nodes beside the set's %(existing)s", part["new"],
                  shared=part["shared"], existing=existing)
    return _("none beside the set's %(existing)s", existing=existing)


def spread_text(plan: Any) -> str:
    """How far each role is spread, in the reader's language ("" for a single VM)."""
    parts = getattr(plan, "spread_parts", ())
    if not parts:
        return getattr(plan, "spread", "")
    return _("; ").join(_spread_part(part) for part in parts)


def strategy_name(name: str) -> str:
    from portal.vms.labels import LABELS

    return str(LABELS["strategy"].get(name, name))


def explanation_text(plan: Any, i: int, server: str) -> str:
    """Why the i-th node's server was chosen: the strategy and what the server has left."""
    left = getattr(plan, "left_free", ())
    if i >= len(left) or not left[i]:
        return plan.explanations[i] if i < len(plan.explanations) else ""
    return _("%(server)s (%(strategy)s): leaves %(free)s free", server=server,
             strategy=strategy_name(plan.strategy), free=demand(left[i]))
