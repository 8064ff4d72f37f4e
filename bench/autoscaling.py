"""Cost of the autoscaler's decisions: the pure engine per evaluation at 10 / 100 / 1,000
members, and a day's replay (2,880 samples at one per 30 s, load swinging between a third
and twice the target) of a group of up to 50 members through simulate.

    python -m bench.autoscaling [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta

from portal.autoscaling.engine import Member, Recommendation, Rules, evaluate, simulate

NOW = datetime(2025, 1, 1, 12)
RULES = Rules(min_size=1, max_size=1000, target=0.6)


def members(count: int, rng: random.Random) -> list[Member]:
    """Mostly serving members with fresh samples, some warming up, some silent."""
    out = []
    for i in range(count):
        roll = rng.random()
        started = NOW - timedelta(seconds=60 if roll < 0.05 else 3600)
        sample = None if roll > 0.97 else (NOW - timedelta(seconds=rng.randint(1, 60)),
                                           rng.uniform(0.2, 1.0))
        out.append(Member(i, started, sample))
    return out


def milliseconds(work, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    q = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    print(f"{label:<38} p50 {statistics.median(times):8.3f} ms   p95 {q[94]:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    window = [Recommendation(NOW - timedelta(seconds=30 * i), 5) for i in range(10)]
    for count in (10, 100, 1000):
        group = members(count, rng)
        report(f"evaluate, {count} members", milliseconds(
            lambda group=group: evaluate(RULES, group, NOW, window), args.repeat))
    day = [(30.0 * i, (1.2, 0.6, 0.2)[(i // 120) % 3]) for i in range(2880)]
    group_rules = Rules(min_size=2, max_size=50, target=0.6)
    report("simulate, 2,880 samples, 2-50 members", milliseconds(
        lambda: simulate(group_rules, 4, day), max(5, args.repeat // 20)))


if __name__ == "__main__":
    main()
