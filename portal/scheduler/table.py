"""A group's servers as columns: what ``plan()`` scores in one vectorised pass.

``HostTable`` is a ``Sequence[Host]`` — anything that takes the group's hosts takes it — that
also holds ids, free and total capacity as numpy arrays, so that filtering and scoring ten
thousand servers is a few array operations instead of ten thousand Python calls. ``plan()``
accepts a plain sequence of hosts and builds a table from it (one pass over the hosts); a
caller that decides again and again over the same group (the reservation layer, benchmarks)
keeps a table, updates the servers that changed, and saves that pass as well. ``Host``
objects are made only when someone asks for one.

A table is plain data like the rest of the core: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import overload

import numpy as np

from portal.scheduler.data import Host, Resources

# One database row of a server, in this order (what the reservation layer selects).
Row = tuple[int, str, str, str, "str | None", int, int, int, int, int, int]


class HostTable(Sequence[Host]):
    """Servers of one group: ``ids`` (n,), ``free`` and ``total`` (n, 3: cpu, memory,
    storage) as int64 arrays, and names, regions, dcs and racks as lists. ``plan()`` never
    changes a table it is given; ``set_free`` is for the caller's own bookkeeping."""

    __slots__ = (
        "_diversity", "_hosts", "_rack_codes", "dcs", "free", "id_list", "ids", "names", "racks",
        "regions", "total",
    )

    def __init__(
        self,
        ids: Sequence[int],
        names: Sequence[str],
        regions: Sequence[str],
        dcs: Sequence[str],
        racks: Sequence[str | None],
        total: np.ndarray,
        free: np.ndarray,
        hosts: Sequence[Host | None] | None = None,
    ) -> None:
        n = len(ids)
        self.id_list = list(ids)
        self.ids = np.array(self.id_list, dtype=np.int64).reshape(n)
        self.names, self.regions, self.dcs, self.racks = (
            list(names), list(regions), list(dcs), list(racks)
        )
        self.total = np.asarray(total, dtype=np.int64).reshape(n, 3)
        self.free = np.array(free, dtype=np.int64).reshape(n, 3)
        self._hosts: list[Host | None] = list(hosts) if hosts is not None else [None] * n
        self._rack_codes: np.ndarray | None = None
        self._diversity: float | None = None

    @classmethod
    def of(cls, hosts: Iterable[Host]) -> HostTable:
        """``hosts`` itself when it is a table already, else a table of them."""
        if isinstance(hosts, HostTable):
            return hosts
        hosts = list(hosts)
        frees = [h.free for h in hosts]
        totals = [h.total for h in hosts]
        return cls(
            [h.id for h in hosts],
            [h.name for h in hosts],
            [h.region for h in hosts],
            [h.dc for h in hosts],
            [h.rack for h in hosts],
            [(t.cpu, t.memory, t.storage) for t in totals],
            [(f.cpu, f.memory, f.storage) for f in frees],
            hosts,
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Row]) -> HostTable:
        """From rows of (id, name, region, dc, rack, total cpu/memory/storage, free
        cpu/memory/storage), as the reservation layer reads them."""
        if not rows:
            return cls([], [], [], [], [], np.zeros((0, 3)), np.zeros((0, 3)))
        ids, names, regions, dcs, racks, *counters = zip(*rows, strict=True)
        numbers = np.array(counters, dtype=np.int64)  # (6, n)
        return cls(ids, names, regions, dcs, racks, numbers[:3].T, numbers[3:].T)

    def with_free(self, rows: Sequence[tuple[int, int, int, int]]) -> HostTable | None:
        """The same servers with new free capacity, from rows of (id, free cpu, memory,
        storage) in the table's order; None when the rows are not of the same servers.
        Everything else is shared with this table (its totals' diversity and rack codes
        too, computed once), so the rows are all a caller that keeps a table re-reads."""
        if len(rows) != len(self.id_list):
            return None
        if not rows:
            return self._with_free_array(np.zeros((0, 3), dtype=np.int64))
        # (n, 4), from one flat pass over the rows: half of np.array(rows)'s time
        numbers = np.fromiter(chain.from_iterable(rows), dtype=np.int64,
                              count=4 * len(rows)).reshape(len(rows), 4)
        if not np.array_equal(numbers[:, 0], self.ids):
            return None
        return self._with_free_array(numbers[:, 1:])

    def _with_free_array(self, free: np.ndarray) -> HostTable:
        table = HostTable.__new__(HostTable)
        table.id_list, table.ids, table.total = self.id_list, self.ids, self.total
        table.names, table.regions, table.dcs, table.racks = (
            self.names, self.regions, self.dcs, self.racks
        )
        table.free = np.ascontiguousarray(free, dtype=np.int64).reshape(len(self.id_list), 3)
        table._hosts = [None] * len(self.id_list)
        table._rack_codes, table._diversity = self.rack_codes(), self.shape_diversity()
        return table

    def subset(self, indices: np.ndarray) -> HostTable:
        """The servers at ``indices`` (an index array or a boolean mask), in that order."""
        picked = np.flatnonzero(indices) if indices.dtype == bool else indices
        chosen = picked.tolist()
        return HostTable(
            [self.id_list[i] for i in chosen],
            [self.names[i] for i in chosen],
            [self.regions[i] for i in chosen],
            [self.dcs[i] for i in chosen],
            [self.racks[i] for i in chosen],
            self.total[picked],
            self.free[picked],
            [self._hosts[i] for i in chosen],
        )

    def rack_codes(self) -> np.ndarray:
        """One small integer per distinct rack (servers without a rack share one)."""
        if self._rack_codes is None:
            codes: dict[str | None, int] = {}
            self._rack_codes = np.array(
                [codes.setdefault(rack, len(codes)) for rack in self.racks], dtype=np.int64
            )
        return self._rack_codes

    def shape_diversity(self) -> float:
        """``shape_diversity(self.total)``, computed once: totals never change in a table."""
        if self._diversity is None:
            self._diversity = shape_diversity(self.total)
        return self._diversity

    def set_free(self, index: int, free: Resources) -> None:
        """Record a server's new free capacity (a placement the caller made)."""
        self.free[index] = (free.cpu, free.memory, free.storage)
        self._hosts[index] = None

    def free_of(self, index: int) -> Resources:
        cpu, memory, storage = self.free[index].tolist()
        return Resources(cpu, memory, storage)

    def total_of(self, index: int) -> Resources:
        host = self._hosts[index]
        if host is not None:
            return host.total
        cpu, memory, storage = self.total[index].tolist()
        return Resources(cpu, memory, storage)

    def __len__(self) -> int:
        return len(self.id_list)

    @overload
    def __getitem__(self, index: int) -> Host: ...

    @overload
    def __getitem__(self, index: slice) -> list[Host]: ...

    def __getitem__(self, index: int | slice) -> Host | list[Host]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        host = self._hosts[index]
        if host is None:
            if index < 0:
                index += len(self)
            host = self._hosts[index] = Host(
                self.id_list[index],
                self.names[index],
                self.regions[index],
                self.dcs[index],
                self.racks[index],
                self.total_of(index),
                self.free_of(index),
            )
        return host

    def __iter__(self) -> Iterator[Host]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"<HostTable of {len(self)} servers>"


def shape_diversity(total: np.ndarray) -> float:
    """How far the group's servers differ in shape: the mean over servers of
    ln(max_d / min_d) of total_d / (the group's mean total_d). 0 when every server has one
    shape (whatever its size); about 0.76 on bench/packing's mixed fleet, 0.26 on two
    hardware generations of similar shape, 1.3 on purpose-built servers. Dimensions that no
    server has are left out; a server without a dimension others have counts as very far."""
    if len(total) == 0:
        return 0.0
    totals = np.asarray(total, dtype=np.float64)
    mean = totals.mean(axis=0)
    present = mean > 0
    if not present.any():
        return 0.0
    relative = np.maximum(totals[:, present] / mean[present], 1e-9)
    return float(np.log(relative.max(axis=1) / relative.min(axis=1)).mean())


# Scores are compared at this many decimals (see core), as Python's round() would round them.
SCORE_DECIMALS = 9
_SCALE = 10.0**SCORE_DECIMALS


def round_scores(scores: np.ndarray) -> np.ndarray:
    """``[round(s, 9) for s in scores]``, bit for bit, in a few array operations.

    rint(s * 1e9) / 1e9 is what round() computes except where s * 1e9 lies within a rounding
    error of a half (the product is rounded, round() works on the exact value): those few
    are handed to round() itself.
    """
    scaled = scores * _SCALE
    rounded = np.rint(scaled) / _SCALE
    with np.errstate(invalid="ignore"):
        near_half = np.abs(scaled - np.floor(scaled) - 0.5) <= 4 * np.spacing(np.abs(scaled))
        unsure = near_half | ~(np.abs(scaled) < 2.0**52)
    for i in np.flatnonzero(unsure).tolist():
        rounded[i] = round(float(scores[i]), SCORE_DECIMALS)
    return rounded
