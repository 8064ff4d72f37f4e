"""Latency of the pure planning core (SPEC 7: single VM in a 1,000-server group p95 < 5 ms,
a 3 + 50 node cluster < 100 ms), for every registered strategy.

    python -m bench.scheduler_latency [--repeat N] [--clock wall|cpu]

Each case is timed twice: with the group as a plain tuple of ``Host`` (what an outside
caller passes; ``plan()`` turns it into arrays first, one pass over the hosts), and as a
``HostTable`` kept from one decision to the next (what the reservation layer and the
packing benchmark do; only the scoring is left). ``--clock cpu`` times the process's CPU
instead of the wall clock: on a shared, loaded machine that is the figure to compare.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from bench.workloads import FLAVORS, make_hosts
from portal.scheduler import (
    STRATEGIES,
    Host,
    HostTable,
    NodeDemand,
    PlacementRequest,
    Plan,
    Resources,
    plan,
)

CONTROL_PLANE = NodeDemand("control-plane", Resources(4, 16, 100))
WORKER = NodeDemand("worker", Resources(8, 32, 200))


CLOCK = time.perf_counter


def timings(requests: list[PlacementRequest], hosts: tuple[Host, ...] | HostTable) -> list[float]:
    """Milliseconds per ``plan()`` call; every call must produce a plan."""
    out = []
    for request in requests:
        started = CLOCK()
        result = plan(request, hosts)
        out.append((CLOCK() - started) * 1000)
        assert isinstance(result, Plan), result
    return out


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {cuts[49]:7.2f}  p95 {cuts[94]:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="calls per measurement")
    parser.add_argument("--strategy", action="append", help="only these (default: all)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = random.Random(11)
    groups = {n: make_hosts(rng, n) for n in (100, 500, 1000, 10_000)}
    tables = {n: HostTable.of(hosts) for n, hosts in groups.items()}
    flavors = [Resources(*f) for f in FLAVORS.values()]

    cases = []
    for n in (100, 1000, 10_000):
        repeat = args.repeat if n < 10_000 else max(20, args.repeat // 2)
        cases.append((f"1 VM, {n:,} servers", n, repeat, None))
    cases.append(("3 + 50 cluster, 1,000 servers", 1000, max(20, args.repeat // 5), (3, 50)))
    cases.append(("3 + 50 cluster, 10,000 servers", 10_000, max(10, args.repeat // 10), (3, 50)))
    cases.append(("5 + 200 cluster, 500 servers", 500, max(20, args.repeat // 10), (5, 200)))

    print(f"{args.clock + ' ms per plan()':<34} {'plain tuple of hosts':^22}   "
          f"{'kept HostTable':^22}")
    for name in args.strategy or STRATEGIES:
        print(name)
        for label, n, repeat, cluster in cases:
            if cluster is None:
                requests = [
                    PlacementRequest((NodeDemand("standalone", rng.choice(flavors)),), name)
                    for _ in range(repeat)
                ]
            else:
                cps, workers = cluster
                nodes = (CONTROL_PLANE,) * cps + (WORKER,) * workers
                requests = [PlacementRequest(nodes, name)] * repeat
            plain = percentiles(timings(requests, groups[n]))
            kept = percentiles(timings(requests, tables[n]))
            print(f"  {label:<32} {plain}   {kept}")


if __name__ == "__main__":
    main()
