"""History for the demo (``flask seed demo``): a week of the simulate driver's load, so
that the charts are not empty on the first start — 15-minute rollups for 7 days (and
their daily rollups), raw samples every 5 minutes for the last 24 hours."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from portal.extensions import db
from portal.metrics import store
from portal.metrics.ingest import parse_ts
from portal.metrics.targets import targets
from portal.models import ALL_METRICS, MetricRollup, metric_15m, utcnow
from portal.provisioning.simulated_load import simulated_samples

RAW_STEP = timedelta(minutes=5)
CHUNK = 5000


def _rows(samples: list[dict]) -> list[dict]:
    return [{"object_type": s["object_type"], "object_id": s["object_id"],
             "ts": parse_ts(s["ts"]), **s["values"]} for s in samples]


def backfill(now: datetime | None = None, days: int = 7, seed: int = 20261204) -> int:
    """Write the history; the rows written. Commits."""
    now = (now or utcnow()).replace(microsecond=0)
    found = targets()
    if not found:
        return 0
    rng = random.Random(seed)
    written = 0
    end = store.floor_bucket(now)
    start = store.floor_bucket(now - timedelta(days=days), store.DAY)
    buckets: list[dict] = []
    ts = start
    while ts < end:
        for row in _rows(simulated_samples(found, rng, ts)):
            bucket = {"object_type": row["object_type"], "object_id": row["object_id"],
                      "ts": ts, "samples": 15}
            for metric in ALL_METRICS:
                value = row.get(metric)
                bucket[metric] = value
                # A bucket's peak sits a little above its mean (fractions stay within 1).
                bucket[f"{metric}_max"] = None if value is None else (
                    min(value * 1.1, 1.0) if metric == "cpu_util" else value * 1.05)
            buckets.append(bucket)
        if len(buckets) >= CHUNK:
            db.session.execute(metric_15m.insert(), buckets)
            written, buckets = written + len(buckets), []
        ts += store.BUCKET
    if buckets:
        db.session.execute(metric_15m.insert(), buckets)
        written += len(buckets)
    raw: list[dict] = []
    ts = now - timedelta(hours=24)
    while ts <= now:
        raw += _rows(simulated_samples(found, rng, ts))
        if len(raw) >= CHUNK:
            written += store.write(raw)
            raw = []
        ts += RAW_STEP
    written += store.write(raw)
    store.rollup_aggregates("15m", start, end)
    day = store.floor_bucket(now, store.DAY)
    written += store.rollup_range("1d", start, day)
    # The history is rolled up to here: the controller carries on from this mark.
    for level, mark in (("15m", end), ("1d", day)):
        state = db.session.get(MetricRollup, level)
        if state is None:
            db.session.add(MetricRollup(level=level, done_until=mark))
        else:
            state.done_until = max(state.done_until, mark)
    db.session.commit()
    return written
