"""Plain data the planning core works on: no Flask, no database, all frozen.

Units follow the domain model: CPU in cores, memory and storage in GiB, all integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The name of the strategy a request uses when it names none (SPEC 3.8). Which heuristic it
# is was chosen by measurement (bench/packing.py); portal/scheduler/strategies.py registers
# it under this name. It lives here, with the request that defaults to it, so that the plain
# data depends on nothing else of the scheduler and every other module may import it.
DEFAULT_STRATEGY = "scarcity_fit"

DIMENSIONS = ("cpu", "memory", "storage")
ROLES = ("standalone", "control-plane", "worker", "management", "bastion")
CONTROL_PLANE = "control-plane"
BASTION = "bastion"
# How the nodes of one request (with ``occupied``) avoid sharing servers (SPEC 8.2).
ANTI_AFFINITY = ("soft", "hard", "none")


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of cpu / memory / storage. May be negative as the result of ``-``
    (quota headroom when usage is already above a lowered limit)."""

    cpu: int
    memory: int
    storage: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu, self.memory + other.memory, self.storage + other.storage
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu, self.memory - other.memory, self.storage - other.storage
        )

    def fits_in(self, other: Resources) -> bool:
        """True when every dimension of ``self`` is at most that of ``other``."""
        return (
            self.cpu <= other.cpu and self.memory <= other.memory and self.storage <= other.storage
        )

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.cpu, self.memory, self.storage)

    def as_dict(self) -> dict[str, int]:
        return {"cpu": self.cpu, "memory": self.memory, "storage": self.storage}

    @classmethod
    def zero(cls) -> Resources:
        return cls(0, 0, 0)

    def __str__(self) -> str:
        return f"cpu {self.cpu} / memory {self.memory} GiB / storage {self.storage} GiB"


@dataclass(frozen=True, slots=True)
class Host:
    """An active server of the group, as the planner sees it."""

    id: int
    name: str
    region: str
    dc: str
    rack: str | None
    total: Resources
    free: Resources


@dataclass(frozen=True, slots=True)
class NodeDemand:
    role: str
    resources: Resources


@dataclass(frozen=True, slots=True)
class Constraints:
    """Where nodes may go. Empty include lists mean "anywhere"; ``exclude_racks`` wins over
    ``racks``. A server without a rack never satisfies a non-empty ``racks`` list."""

    regions: tuple[str, ...] = ()
    dcs: tuple[str, ...] = ()
    racks: tuple[str, ...] = ()
    exclude_racks: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.regions or self.dcs or self.racks or self.exclude_racks)


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """The nodes to place. All of them, together with ``occupied`` (host id -> members of
    the same set already there: a cluster's nodes when it scales up), form one
    anti-affinity set: ``hard`` allows one member per server, ``soft`` prefers the servers
    holding the fewest members before the strategy's score, ``none`` packs only. Control
    planes keep their own rule (distinct servers, racks when possible) under any setting."""

    nodes: tuple[NodeDemand, ...]
    strategy: str = DEFAULT_STRATEGY
    constraints: Constraints = field(default_factory=Constraints)
    anti_affinity: str = "soft"
    occupied: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Where every node goes.

    ``assignments[i]`` is the host id for ``request.nodes[i]``. ``spread`` says how far each
    role is spread ("3 control planes on 3 racks; 12 workers on 12 servers"), "" for a
    single VM.
    ``explanations[i]`` is one line on why that server was chosen, for previews.
    """

    assignments: tuple[int, ...]
    spread: str
    explanations: tuple[str, ...] = ()
    strategy: str = ""
    # The same as data, for wording in the reader's language (portal.scheduler.messages):
    # the spread's parts, and what each chosen server has left once its node is placed.
    spread_parts: tuple[dict, ...] = ()
    left_free: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """Why nothing can be placed. ``code`` is an API error code: ``quota_exceeded``,
    ``insufficient_capacity`` or ``validation_error``; ``message`` is a sentence a user can
    act on; ``details`` holds the same numbers for machines."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
