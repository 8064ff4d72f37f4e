"""The pure planning core: ``plan(request, hosts, headroom) -> Plan | Refusal`` (SPEC 3).

No Flask, no database: the reservation layer reads hosts and quota headroom, calls
``plan()``, and commits the result; previews call the same function and commit nothing.

Validation is a value, not an exception: empty requests, negative resources, unknown roles
and unknown strategies come back as a ``Refusal`` with code ``validation_error``, because
these inputs come from API bodies and forms. Only wrong *types* (a programming error) raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from portal.scheduler.data import (
    ANTI_AFFINITY,
    BASTION,
    CONTROL_PLANE,
    DIMENSIONS,
    ROLES,
    Host,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
)
from portal.scheduler.explain import (
    VALIDATION_ERROR,
    capacity_refusal,
    constraint_reason,
    plural,
    quota_refusal,
)
from portal.scheduler.strategies import STRATEGIES, ScoreFunction, Strategy
from portal.scheduler.table import SCORE_DECIMALS, HostTable, round_scores

# Scores are compared at this many decimals so that float rounding never decides between
# servers the SPEC formula scores equally; those ties go to the server name, as specified.
_SCORE_DECIMALS = SCORE_DECIMALS


def plan(
    request: PlacementRequest,
    hosts: Sequence[Host],
    headroom: Resources | None = None,
    *,
    inactive: Mapping[str, int] | None = None,
) -> Plan | Refusal:
    """Choose a server for every node of ``request``, or explain why not.

    ``hosts`` are the group's ACTIVE servers (the caller filters by status and may report
    the ones it left out in ``inactive``, e.g. ``{"maintenance": 3}``, so refusals count
    them). ``headroom`` is the tenant's quota left in the group, None for no quota limit;
    pass a very large number for a dimension that is unlimited.

    Order of checks: validation, quota (the request as a whole), then placement:

    * Control planes first — they are the hardest constraint: each on a distinct server,
      and on distinct racks whenever some choice allows it (servers without a rack count as
      one shared unknown rack). When distinct racks are impossible they spread over as many
      racks as possible. The choice is checked by bipartite matching, so it never fails
      where another choice of control-plane servers would have succeeded.
    * Then every other node in request order, each on the best server with room in a
      working copy of free capacity. All nodes plus ``request.occupied`` form one
      anti-affinity set (SPEC 8.2): under ``hard`` a server holding a member has no room for
      another; under ``soft`` "best" means fewest members first, then the strategy's score,
      so nodes spread as far as room allows and, short of servers, pile up evenly; under
      ``none`` it is the score alone. A bastion also avoids the control planes' servers
      whenever another server has room, whatever the setting.
    * All-or-nothing: if any node finds no server, the whole request is refused. Workers do
      not move control planes: if the control planes' servers leave too little room for the
      workers, that is a refusal even if a different control-plane choice could have worked.

    ``Plan.assignments`` is in request order whatever order nodes were placed in. The result
    depends only on the input values, not on the order of ``hosts``.
    """
    strategy = STRATEGIES.get(request.strategy)
    invalid = _validate(request, strategy)
    if invalid is not None:
        return invalid
    assert strategy is not None

    if headroom is not None:
        requested = Resources.zero()
        for node in request.nodes:
            requested += node.resources
        over_quota = quota_refusal(requested, headroom)
        if over_quota is not None:
            return over_quota

    constraints = request.constraints
    table = HostTable.of(hosts)
    allowed = (
        table
        if constraints.is_empty()
        else table.subset(
            np.array([constraint_reason(h, constraints) is None for h in table], dtype=bool)
        )
    )
    pool = _Pool(
        allowed, strategy.name, strategy.scorer(table), request.anti_affinity, request.occupied
    )
    nodes = request.nodes
    chosen: list[int] = [-1] * len(nodes)  # indices into ``allowed``
    explanations: list[str] = [""] * len(nodes)
    left_free: list[dict[str, int]] = [{}] * len(nodes)  # the chosen server's, after the node

    def refuse(headline: str, failed: NodeDemand, extra: dict) -> Refusal:
        return capacity_refusal(
            headline=headline,
            failed=failed,
            hosts=hosts,
            free=pool.working_free(),
            constraints=constraints,
            inactive=inactive,
            extra={"placed": sum(1 for c in chosen if c >= 0), **extra},
            members=pool.member_counts() if pool.hard else None,
        )

    control_planes = [i for i, node in enumerate(nodes) if node.role == CONTROL_PLANE]
    if control_planes:
        demands = [nodes[i].resources for i in control_planes]
        placed = _place_control_planes(pool, demands)
        if isinstance(placed, int):
            return _control_plane_refusal(pool, refuse, nodes, control_planes, placed)
        for i, host_index in zip(control_planes, placed, strict=True):
            chosen[i] = host_index
            explanations[i] = pool.explain(host_index)
            left_free[i] = pool.free_after(host_index)

    for i, node in enumerate(nodes):
        if node.role == CONTROL_PLANE:
            continue
        demand = node.resources
        host_index = pool.best(demand, avoid_control_planes=node.role == BASTION)
        if host_index is None:
            if pool.hard and bool((pool.fit_mask(demand) & (pool.members > 0)).any()):
                headline = (
                    f"Hard anti-affinity allows one member of this set per server: no server "
                    f"without a member is left for node {i + 1} of {len(nodes)} ({node.role}, "
                    f"{node.resources}); the set's "
                    f"{len(nodes) + sum(request.occupied.values())} members need as many "
                    "servers with room. Nothing was reserved."
                )
                kind = "hard_anti_affinity"
            elif len(nodes) == 1:
                headline = f"No server in this group has room for {node.resources}."
                kind = "no_room"
            else:
                headline = (
                    f"No server has room for node {i + 1} of {len(nodes)} ({node.role}, "
                    f"{node.resources}) once the nodes placed before it are counted; "
                    "nothing was reserved."
                )
                kind = "no_room_after_earlier"
            # The headline as data too: portal.scheduler.messages words it per language.
            said = {"kind": kind, "node": i + 1, "nodes": len(nodes), "role": node.role,
                    "demand": node.resources.as_dict(),
                    "members": len(nodes) + sum(request.occupied.values())}
            return refuse(headline, node, {"failed_node": i, "headline": said})
        pool.take(host_index, demand, node.role)
        chosen[i] = host_index
        explanations[i] = pool.explain(host_index)
        left_free[i] = pool.free_after(host_index)

    placed = [allowed[h] for h in chosen]
    return Plan(
        assignments=tuple(allowed.id_list[h] for h in chosen),
        spread=_describe_spread(nodes, placed, request.occupied),
        explanations=tuple(explanations),
        strategy=strategy.name,
        spread_parts=tuple(spread_parts(nodes, placed, request.occupied)),
        left_free=tuple(left_free),
    )


def _validate(request: PlacementRequest, strategy: Strategy | None) -> Refusal | None:
    if strategy is None:
        known = ", ".join(sorted(STRATEGIES))
        return Refusal(
            VALIDATION_ERROR,
            f"Unknown placement strategy {request.strategy!r}; choose one of: {known}.",
            {"field": "strategy", "value": request.strategy, "choices": sorted(STRATEGIES)},
        )
    if not request.nodes:
        return Refusal(
            VALIDATION_ERROR, "A placement request needs at least one node.", {"field": "nodes"}
        )
    if request.anti_affinity not in ANTI_AFFINITY:
        return Refusal(
            VALIDATION_ERROR,
            f"Unknown anti-affinity {request.anti_affinity!r}; choose one of: "
            f"{', '.join(ANTI_AFFINITY)}.",
            {
                "field": "anti_affinity",
                "value": request.anti_affinity,
                "choices": list(ANTI_AFFINITY),
            },
        )
    for host_id, count in request.occupied.items():
        if count < 0:
            return Refusal(
                VALIDATION_ERROR,
                f"Server {host_id} cannot hold {count} members of the set.",
                {"field": "occupied", "host": host_id, "value": count},
            )
    for i, node in enumerate(request.nodes):
        if node.role not in ROLES:
            return Refusal(
                VALIDATION_ERROR,
                f"Node {i + 1} has unknown role {node.role!r}; roles are {', '.join(ROLES)}.",
                {"field": "role", "node": i, "value": node.role, "choices": list(ROLES)},
            )
        for d in DIMENSIONS:
            value = getattr(node.resources, d)
            if value < 0:
                return Refusal(
                    VALIDATION_ERROR,
                    f"Node {i + 1} ({node.role}) asks for negative {d} ({value}).",
                    {"field": d, "node": i, "value": value},
                )
    return None


class _Pool:
    """Working copy of free capacity over the allowed servers of one ``plan()`` call, and of
    how many members of the request's anti-affinity set each one holds.

    Servers are rows of a ``HostTable``; per distinct demand the pool keeps which servers
    have room and their rounded scores as arrays, computed in one vectorised pass the first
    time the demand is asked for. A placement changes one server: its room is updated at
    once and its score the next time that demand is asked for (by the scalar score
    function, which the array twin matches bit for bit), so placing 200 identical workers
    costs one scoring pass plus a few array operations per node. ``best()`` takes the
    lowest (preference, score, name, id), the preference being (control planes held, for a
    bastion; members held, under soft anti-affinity).
    """

    def __init__(
        self,
        hosts: HostTable,
        strategy: str,
        score: ScoreFunction,
        anti_affinity: str = "none",
        occupied: Mapping[int, int] | None = None,
    ) -> None:
        self.hosts = hosts
        self.strategy = strategy
        self.score = score
        n = len(hosts)
        self.free = hosts.free.copy()
        self.taken = np.zeros(n, dtype=bool)
        self.hard = anti_affinity == "hard"
        self.soft = anti_affinity == "soft"
        self.members = np.zeros(n, dtype=np.int64)
        if occupied:
            for i, host_id in enumerate(hosts.id_list):
                if host_id in occupied:
                    self.members[i] = occupied[host_id]
        self.control_planes = np.zeros(n, dtype=np.int64)
        self._fits: dict[Resources, np.ndarray] = {}
        self._scores: dict[Resources, np.ndarray] = {}
        self._stale: dict[Resources, set[int]] = {}  # rescored when next asked for

    def __len__(self) -> int:
        return len(self.hosts)

    def fit_mask(self, demand: Resources) -> np.ndarray:
        """Which servers have the capacity for ``demand`` (members aside)."""
        mask = self._fits.get(demand)
        if mask is None:
            free = self.free
            mask = self._fits[demand] = (
                (free[:, 0] >= demand.cpu)
                & (free[:, 1] >= demand.memory)
                & (free[:, 2] >= demand.storage)
            )
        return mask

    def room_mask(self, demand: Resources) -> np.ndarray:
        """Capacity for ``demand`` and, under hard anti-affinity, no member of the set."""
        mask = self.fit_mask(demand)
        return mask & (self.members == 0) if self.hard else mask

    def scores(self, demand: Resources) -> np.ndarray:
        """The strategy's score of every server for ``demand``, rounded (meaningful only
        where the demand fits)."""
        scores = self._scores.get(demand)
        if scores is None:
            array = getattr(self.score, "array", None)
            if array is not None:
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    raw = array(self.free, self.hosts.total, demand)
                scores = round_scores(np.asarray(raw, dtype=np.float64))
            else:  # a strategy without an array twin: one call per server with room
                scores = np.full(len(self), np.inf)
                for i in np.flatnonzero(self.fit_mask(demand)).tolist():
                    scores[i] = self._score_one(i, demand)
            self._scores[demand] = scores
            self._stale[demand] = set()
        else:
            stale = self._stale[demand]
            if stale:
                fits = self.fit_mask(demand)
                for i in stale:
                    if fits[i]:
                        scores[i] = self._score_one(i, demand)
                stale.clear()
        return scores

    def _score_one(self, i: int, demand: Resources) -> float:
        cpu, memory, storage = self.free[i].tolist()
        return round(
            self.score(Resources(cpu, memory, storage), self.hosts.total_of(i), demand),
            _SCORE_DECIMALS,
        )

    def best(self, demand: Resources, avoid_control_planes: bool = False) -> int | None:
        """Index of the best server with room for ``demand``, None when none has room."""
        candidates = np.flatnonzero(self.room_mask(demand))
        if not candidates.size:
            return None
        held = self.control_planes[candidates] if avoid_control_planes else None
        return self.lowest(candidates, demand, held)

    def lowest(
        self, candidates: np.ndarray, demand: Resources, first: np.ndarray | None = None
    ) -> int:
        """The candidate (an index array, not empty) with the lowest key, ``first`` (one
        number per candidate) ranking before the key."""
        if first is not None:
            candidates = candidates[first == first.min()]
        if self.soft:
            held = self.members[candidates]
            candidates = candidates[held == held.min()]
        scores = self.scores(demand)[candidates]
        pick = getattr(self.score, "pick", None)
        best = self.first_by_name(candidates[scores == scores.min()])
        if pick is None or candidates.size == 1:
            return best
        return pick(self.free, self.hosts.total, candidates, demand, best, self.first_by_name)

    def first_by_name(self, candidates: np.ndarray) -> int:
        """The candidate (an index array, not empty) whose (name, id) comes first."""
        if candidates.size == 1:
            return int(candidates[0])
        names, ids = self.hosts.names, self.hosts.id_list
        return min(candidates.tolist(), key=lambda i: (names[i], ids[i]))

    def take(self, i: int, demand: Resources, role: str = "") -> None:
        self.free[i] -= (demand.cpu, demand.memory, demand.storage)
        self.taken[i] = True
        self.members[i] += 1
        if role == CONTROL_PLANE:
            self.control_planes[i] += 1
        cpu, memory, storage = self.free[i].tolist()
        for other, mask in self._fits.items():
            mask[i] = cpu >= other.cpu and memory >= other.memory and storage >= other.storage
        for stale in self._stale.values():
            stale.add(i)

    def working_free(self) -> dict[int, Resources]:
        """Free capacity of the servers that earlier nodes of this request used, by id."""
        return {
            self.hosts.id_list[i]: Resources(*self.free[i].tolist())
            for i in np.flatnonzero(self.taken).tolist()
        }

    def member_counts(self) -> dict[int, int]:
        """Members of the set per server id, those of earlier nodes of this request too."""
        return {
            self.hosts.id_list[i]: int(self.members[i])
            for i in np.flatnonzero(self.members).tolist()
        }

    def free_after(self, i: int) -> dict[str, int]:
        return Resources(*self.free[i].tolist()).as_dict()

    def explain(self, i: int) -> str:
        free = Resources(*self.free[i].tolist())
        return f"{self.hosts.names[i]} ({self.strategy}): leaves {free} free"


def _place_control_planes(pool: _Pool, demands: list[Resources]) -> list[int] | int:
    """Distinct servers for the control planes, on distinct racks when possible.

    Returns the chosen server indices, or — when no set of distinct servers can take them
    all — the largest number of control planes that distinct servers could take.

    Each control plane goes to the best-scoring server on the least-used rack, accepted only
    if the remaining control planes can still be matched (to unused racks, or to unused
    servers in the fallback); so the greedy choice never paints itself into a corner.
    """
    n = len(demands)
    racks = pool.hosts.racks
    candidates = [np.flatnonzero(pool.room_mask(d)).tolist() for d in demands]
    matched = _max_matching([set(c) for c in candidates])
    if matched < n:
        return matched
    by_rack = _max_matching([{racks[i] for i in c} for c in candidates]) == n
    # Identical demands (the usual case) can never paint the choice into a corner.
    needs_check = len(set(demands)) > 1

    chosen: list[int] = []
    rack_of = pool.hosts.rack_codes()
    load = np.zeros(len(pool.hosts) + 1, dtype=np.int64)  # control planes per rack code
    for k, demand in enumerate(demands):
        options = np.array(candidates[k], dtype=np.int64)
        if chosen:
            options = options[~np.isin(options, chosen)]
        # Options in order of (rack load, key), taken lazily: the first is usually accepted.
        while options.size:
            i = pool.lowest(options, demand, load[rack_of[options]])
            if by_rack and load[rack_of[i]]:
                break  # the least loaded is used: only used racks remain; the check rules them out
            if not needs_check or _rest_can_follow(
                candidates[k + 1 :], [*chosen, i], racks, by_rack
            ):
                chosen.append(i)
                load[rack_of[i]] += 1
                pool.take(i, demand, CONTROL_PLANE)
                break
            options = options[options != i]
    assert len(chosen) == n, "matching said the control planes fit"
    return chosen


def _rest_can_follow(
    rest: list[list[int]], taken: list[int], racks: list[str | None], by_rack: bool
) -> bool:
    if by_rack:
        used = {racks[i] for i in taken}
        groups = [{racks[i] for i in c} - used for c in rest]
    else:
        groups = [set(c).difference(taken) for c in rest]
    return _max_matching(groups) == len(rest)


def _max_matching(options: list[set]) -> int:
    """Size of a maximum matching of items to distinct options (Kuhn's augmenting paths).
    Items are control planes, a handful at most."""
    owner: dict[object, int] = {}

    def augment(item: int, seen: set) -> bool:
        for option in options[item]:
            if option not in seen:
                seen.add(option)
                if option not in owner or augment(owner[option], seen):
                    owner[option] = item
                    return True
        return False

    return sum(augment(item, set()) for item in range(len(options)))


_NOUNS = {"standalone": "VM", "worker": "worker", "management": "management node"}


def _describe_spread(
    nodes: tuple[NodeDemand, ...], chosen: list[Host], occupied: Mapping[int, int]
) -> str:
    """What was achieved for every role, in request order of roles: "3 control planes on 3
    racks; 12 workers on 5 servers, at most 3 on one; bastion apart from the control
    planes". "" for a single VM: there is nothing to spread."""
    return "; ".join(_spread_english(part) for part in spread_parts(nodes, chosen, occupied))


def spread_parts(
    nodes: tuple[NodeDemand, ...], chosen: list[Host], occupied: Mapping[int, int]
) -> list[dict]:
    """The spread as data, one part per role (and one for the set's existing members):
    what portal.scheduler.messages words in the reader's language. [] for a single VM."""
    by_role: dict[str, list[Host]] = {}
    for node, host in zip(nodes, chosen, strict=True):
        by_role.setdefault(node.role, []).append(host)
    if len(nodes) == 1 and not occupied and nodes[0].role != CONTROL_PLANE:
        return []
    cp_ids = {h.id for h in by_role.get(CONTROL_PLANE, [])}
    parts: list[dict] = []
    for role, hosts in by_role.items():
        if role == CONTROL_PLANE:
            racks = [h.rack for h in hosts]
            per_rack = Counter(racks)
            parts.append({"kind": "control_planes", "n": len(racks),
                          "unknown": racks.count(None), "racks": len(per_rack),
                          "worst": max(per_rack.values())})
        elif role == BASTION and cp_ids:
            parts.append({"kind": "bastion", "n": len(hosts),
                          "shared": sum(h.id in cp_ids for h in hosts)})
        else:
            per_server = Counter(h.id for h in hosts)
            parts.append({"kind": "role", "role": role, "n": len(hosts),
                          "servers": len(per_server), "most": max(per_server.values())})
    existing = sum(occupied.values())
    if existing:
        parts.append({"kind": "existing", "new": len(nodes), "existing": existing,
                      "shared": sum(1 for h in chosen if occupied.get(h.id))})
    return parts


def _spread_english(part: dict) -> str:
    kind, n = part["kind"], part.get("n", 0)
    if kind == "control_planes":
        return _spread(n, part["unknown"], part["racks"], part["worst"])
    if kind == "bastion":
        noun = "bastion" if n == 1 else "bastions"
        return (f"{noun} on a control plane's server (no other server had room)"
                if part["shared"] else f"{noun} apart from the control planes")
    if kind == "role":
        role = part["role"]
        phrase = f"{plural(n, _NOUNS.get(role, role))} on {plural(part['servers'], 'server')}"
        if part["servers"] < n:
            phrase += f", at most {part['most']} on one"
        return phrase
    existing = plural(part["existing"], "existing member")
    if part["shared"]:
        return f"{part['shared']} of {plural(part['new'], 'new node')} beside the set's {existing}"
    return f"none beside the set's {existing}"


def _spread(n: int, unknown: int, racks: int, worst: int) -> str:
    """How far the control planes are spread, in words an operator reads as risk."""
    if n == 1:
        return "1 control plane on 1 server"
    if unknown:
        return (
            f"{n} control planes on {n} servers; rack spread unknown: "
            f"{plural(unknown, 'server')} with no rack recorded"
        )
    if racks == n:
        return f"{n} control planes on {n} racks"
    return (
        f"{n} control planes on {n} servers, {plural(racks, 'rack')} — "
        f"a rack failure would take down {worst} of {n}"
    )


def _control_plane_refusal(
    pool: _Pool,
    refuse: Callable[[str, NodeDemand, dict], Refusal],
    nodes: tuple[NodeDemand, ...],
    control_planes: list[int],
    fit: int,
) -> Refusal:
    n = len(control_planes)
    # Explain against the control plane that the fewest servers can take.
    failed = nodes[
        min(
            control_planes,
            key=lambda i: int(pool.room_mask(nodes[i].resources).sum()),
        )
    ]
    if n == 1:
        headline = f"No server in this group has room for the control plane ({failed.resources})."
        kind = "no_room_control_plane"
    elif len({nodes[i].resources for i in control_planes}) == 1:
        headline = (
            f"{n} control planes need {n} distinct servers; only "
            f"{plural(fit, 'server')} {'has' if fit == 1 else 'have'} room for {failed.resources}."
        )
        kind = "control_planes_same"
    else:
        headline = (
            f"{n} control planes need {n} distinct servers; at most {fit} of them fit on "
            "distinct servers at once."
        )
        kind = "control_planes_mixed"
    said = {"kind": kind, "control_planes": n, "fit": fit, "demand": failed.resources.as_dict()}
    return refuse(headline, failed, {"control_planes": n, "distinct_servers_with_room": fit,
                                     "headline": said})
