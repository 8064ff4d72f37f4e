"""The simulate driver's measurements (SPEC 8.4): plausible load so that the demo's charts
live — a working day's curve by the hour in Asia/Taipei, noise, and a few stable hot spots.

- A VM's CPU follows the diurnal curve around a level of its own (from a hash of its id),
  with seeded noise; memory and storage stay within its flavor.
- A server reports the sum of its VMs' use plus the hypervisor's overhead (a few servers,
  chosen by hash, also run load the portal did not place: the hot spots above 85 %).
- A cluster reports its nodes as the portal knows them, requests that follow the curve,
  and, now and then (more often on its hot spots), pods pending.
Deterministic for a given time and seed, apart from the noise.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from portal.provisioning.drivers import MetricTarget

TAIPEI = ZoneInfo("Asia/Taipei")
HOT_ONE_IN = 16  # objects whose hash falls here are hot spots
OVERHEAD_CPU, OVERHEAD_MEMORY_GIB, OVERHEAD_STORAGE_GIB = 1.0, 4.0, 20.0


def _hash(kind: str, object_id: int) -> int:
    return zlib.crc32(f"{kind}:{object_id}".encode())


def is_hot(kind: str, object_id: int) -> bool:
    return _hash(kind, object_id) % HOT_ONE_IN == 0


def diurnal(now: datetime) -> float:
    """0 (03:00 in Taipei) … 1 (15:00): office hours' load."""
    local = now.replace(tzinfo=UTC).astimezone(TAIPEI)
    hour = local.hour + local.minute / 60
    return 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3) / 24)


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def vm_load(target: MetricTarget, now: datetime, noise: float) -> dict[str, float]:
    h = _hash("vm", target.object_id)
    level = 0.08 + (h % 1000) / 1000 * 0.35  # this VM's own quiet level
    swing = 0.15 + (h >> 10) % 100 / 100 * 0.3
    if is_hot("vm", target.object_id):
        level, swing = 0.75, 0.2
    cpu = _clip(level + swing * diurnal(now) + noise)
    memory = target.memory * _clip(0.35 + 0.4 * cpu + ((h >> 17) % 10) / 100, 0, 0.97)
    storage = target.storage * _clip(0.2 + ((h >> 20) % 60) / 100, 0, 0.95)
    return {"cpu_util": round(cpu, 4), "memory_used_gib": round(memory, 3),
            "storage_used_gib": round(storage, 3)}


def server_load(target: MetricTarget, vms: list[tuple[MetricTarget, dict[str, float]]],
                now: datetime, noise: float) -> dict[str, float]:
    cpus = max(target.cpu, 1)
    busy = OVERHEAD_CPU + sum(vm.cpu * values["cpu_util"] for vm, values in vms)
    if is_hot("baremetal", target.object_id):  # load the portal did not place
        busy += cpus * (0.85 + 0.1 * diurnal(now))
    memory = OVERHEAD_MEMORY_GIB + sum(v["memory_used_gib"] for _, v in vms)
    storage = OVERHEAD_STORAGE_GIB + sum(v["storage_used_gib"] for _, v in vms)
    return {"cpu_util": round(_clip(busy / cpus + noise / 4), 4),
            "memory_used_gib": round(min(memory, max(target.memory, 0)), 3),
            "storage_used_gib": round(min(storage, max(target.storage, 0)), 3)}


def cluster_load(target: MetricTarget, now: datetime, rng: random.Random) -> dict[str, float]:
    total = target.nodes_total or 0
    ready = target.nodes_ready if target.nodes_ready is not None else total
    share = _clip(0.3 + 0.5 * diurnal(now) + rng.gauss(0, 0.03))
    hot = is_hot("cluster", target.object_id)
    pending = 0
    if hot and diurnal(now) > 0.6:
        pending = rng.randint(1, 8)
    elif rng.random() < 0.05:
        pending = rng.randint(1, 3)
    return {"nodes_ready": ready, "nodes_total": total, "pods_pending": pending,
            "cpu_requested": round(target.cpu * share, 2),
            "memory_requested_gib": round(target.memory * _clip(share + 0.1), 2)}


def simulated_samples(targets: Sequence[MetricTarget], rng: random.Random,
                      now: datetime | None = None) -> list[dict]:
    """One sample per target, in the shape of POST /api/v1/metrics."""
    now = now or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ts = now.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    samples: list[dict] = []
    on_server: dict[int, list[tuple[MetricTarget, dict[str, float]]]] = {}
    for target in targets:
        if target.object_type == "vm":
            values = vm_load(target, now, rng.gauss(0, 0.04))
            if target.baremetal_id is not None:
                on_server.setdefault(target.baremetal_id, []).append((target, values))
            samples.append(_sample(target, ts, values))
    for target in targets:
        if target.object_type == "baremetal":
            values = server_load(target, on_server.get(target.object_id, []), now,
                                 rng.gauss(0, 0.04))
            samples.append(_sample(target, ts, values))
        elif target.object_type == "cluster":
            samples.append(_sample(target, ts, cluster_load(target, now, rng)))
    return samples


def _sample(target: MetricTarget, ts: str, values: dict[str, float]) -> dict:
    return {"object_type": target.object_type, "object_id": target.object_id, "ts": ts,
            "values": values}
