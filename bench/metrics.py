"""The embedded metrics store on PostgreSQL (SPEC 8.4, issue #12): sustained ingestion,
storage per million samples, and the series read of one server's 30 days.

    .venv/bin/python -m bench.metrics [--servers 10000] [--clients 1,4] [--seconds 20]
                                      [--batch 1000] [--workers 2] [--quick]

It creates its own database (dropped at the end), migrates it, and adds ``--servers``
servers. Then:

- ingestion: a gunicorn serving the portal (``--workers`` processes) takes
  ``POST /api/v1/metrics`` batches of ``--batch`` server samples (three metrics each) from
  C client processes posting as fast as they can for ``--seconds``, through the real
  HTTP API with an operator's token: every batch validated (the servers' existence too)
  and written in one multi-row upsert. Samples/s is what the portal accepted per second.
  Goal ≥ 5,000/s (dataset L reports ~1,800/s).
- storage: ``pg_total_relation_size`` of ``metric_raw`` (heap, the primary key, the BRIN
  index, TOAST) over its rows, per million samples; the same for ``metric_15m``.
- series: 30 days of 15-minute rollups for every server (generated in the database),
  then ``portal.metrics.query.series()`` of one random server's cpu_util and
  memory_used_gib over the last 30 days, repeated; p50/p95 in milliseconds (the chart
  page's own p95 is measured by the pages bench).

``--quick``: 500 servers, 1 and 2 clients for 6 s, 7 days of rollups.

``--pages [--size L] [--days 30] [--raw-interval 60] [--repeat 20]``: instead, the chart
pages' p95 on dataset L with 30 days of history (bench/metrics_pages.py).

Measured 2026-12-04 on the shared 2-core machine (load average 13 from other work), the
defaults: 5,119 samples/s from 1 client, 7,562/s from 4 (batch p95 0.5 s / 1.3 s);
126 MB per million raw samples; 165 bytes per 15-minute bucket; series() of one server's
30 days with 28.8 million buckets loaded p50 84 ms, p95 116 ms (mostly cold pages: the
same read on 7 days of 500 servers, all cached, is p95 12 ms).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "PORTAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def database_url(name: str, driver: str = "postgresql+psycopg") -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://", 1)
    return f"{base}/{name}"


def make_app(url: str):
    from portal import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "PORTAL_AGENT": "off", "TESTING": True})


def build(url: str, servers: int) -> tuple[list[int], str]:
    """Migrate, add the servers and an operator with a write token."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from portal.auth import service as accounts
    from portal.auth import tokens
    from portal.extensions import db
    from portal.models import Baremetal, BaremetalGroup

    app = make_app(url)
    with app.app_context():
        upgrade()
        group = BaremetalGroup(name="bench", total_cpu=0, total_memory=0, total_storage=0)
        db.session.add(group)
        db.session.flush()
        db.session.execute(insert(Baremetal), [
            {"name": f"srv-{i:05d}", "serial": f"SN{i:07d}", "group_id": group.id,
             "total_cpu": 64, "total_memory": 512, "total_storage": 4000,
             "available_cpu": 64, "available_memory": 512, "available_storage": 4000}
            for i in range(servers)])
        operator = accounts.create_user("bench-ops", "bench-ops-password-1", operator=True,
                                        check_password=False)
        secret = tokens.issue_token(operator, "bench", scopes=["write"]).secret
        db.session.commit()
        ids = list(db.session.scalars(select(Baremetal.id).order_by(Baremetal.id)))
        db.engine.dispose()
    return ids, secret


# --------------------------------------------------------------------------- ingestion

def client_main(base: str, token: str, ids: list[int], client: int, clients: int,
                batch: int, seconds: float, origin: float, ready, start, results) -> None:
    rng = random.Random(client)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ready.release()
    start.wait()
    deadline = time.perf_counter() + seconds
    accepted, batches, latencies, n = 0, 0, [], 0
    while time.perf_counter() < deadline:
        # A distinct second for every batch of every client: rows, not upserts of one.
        ts = datetime.fromtimestamp(origin + (n * clients + client), UTC)
        stamp = ts.isoformat().replace("+00:00", "Z")
        first = (n * batch) % len(ids)
        chosen = [ids[(first + i) % len(ids)] for i in range(batch)]
        body = json.dumps({"agent": f"bench-{client}", "samples": [
            {"object_type": "baremetal", "object_id": i, "ts": stamp,
             "values": {"cpu_util": round(rng.random(), 4),
                        "memory_used_gib": round(rng.uniform(10, 500), 2),
                        "storage_used_gib": round(rng.uniform(100, 3900), 1)}}
            for i in chosen]}).encode()
        began = time.perf_counter()
        request = urllib.request.Request(base + "/api/v1/metrics", data=body, headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            accepted += json.loads(response.read())["accepted"]
        latencies.append(time.perf_counter() - began)
        batches += 1
        n += 1
    results.put((accepted, batches, latencies))


def gunicorn(url: str, workers: int):
    port = 18000 + random.randrange(1000)
    env = {**os.environ, "DATABASE_URL": url, "PORTAL_AGENT": "off", "SECRET_KEY": "bench",
           "PORTAL_MAX_REQUEST_MB": "8"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/livez", timeout=2):
                return process, base
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.3)


def ingest(url: str, token: str, ids: list[int], clients: int, batch: int, seconds: float,
           workers: int, origin: float) -> dict:
    process, base = gunicorn(url, workers)
    try:
        ready, start = multiprocessing.Semaphore(0), multiprocessing.Event()
        results = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=client_main, args=(
            base, token, ids, c, clients, batch, seconds, origin, ready, start, results))
            for c in range(clients)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        began = time.perf_counter()
        start.set()
        outcomes = [results.get() for _ in procs]
        elapsed = time.perf_counter() - began
        for p in procs:
            p.join()
    finally:
        process.terminate()
        process.wait(timeout=30)
    accepted = sum(o[0] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o[2])
    return {"clients": clients, "accepted": accepted, "elapsed": elapsed,
            "rate": accepted / elapsed, "batches": sum(o[1] for o in outcomes),
            "p95_batch_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000
            if latencies else 0.0, "load": os.getloadavg()[0]}


# --------------------------------------------------------------------------- storage, reads

def storage(conn, table: str) -> tuple[int, int]:
    conn.execute(f"VACUUM ANALYZE {table}")
    size = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return size, rows


def load_history(conn, days: int) -> int:
    """``days`` of 15-minute rollups for every server, generated in the database."""
    conn.execute(f"""
        INSERT INTO metric_15m (object_type, object_id, ts, cpu_util, cpu_util_max,
                                memory_used_gib, memory_used_gib_max, storage_used_gib,
                                storage_used_gib_max, samples)
        SELECT 'baremetal', b.id, t,
               r, least(r * 1.2, 1), 100 + r * 300, 110 + r * 300, 2000, 2000, 15
          FROM baremetal b,
               generate_series(date_bin('15 minutes', now()::timestamp - interval '{days} days',
                                        TIMESTAMP '2000-01-01'),
                               now()::timestamp, interval '15 minutes') AS t,
               LATERAL (SELECT (0.5 + 0.4 * sin(extract(epoch FROM t) / 13751 + b.id))::real
                        AS r) AS v
        ON CONFLICT DO NOTHING""")
    conn.commit()
    return conn.execute("SELECT count(*) FROM metric_15m").fetchone()[0]


def series_latency(url: str, ids: list[int], repeats: int) -> list[float]:
    from portal.extensions import db
    from portal.metrics import query
    from portal.models import utcnow

    app = make_app(url)
    timings = []
    with app.app_context():
        rng = random.Random(3)
        for i in range(repeats + 5):
            server = rng.choice(ids)
            end = utcnow()
            began = time.perf_counter()
            found = query.series("baremetal", [server], ["cpu_util", "memory_used_gib"],
                                 end - timedelta(days=30), end)
            db.session.rollback()
            if i >= 5:  # warm-up
                timings.append((time.perf_counter() - began) * 1000)
            assert found, "no history read"
        db.engine.dispose()
    return sorted(timings)


def main() -> None:
    if "--pages" in sys.argv[1:]:
        from bench import metrics_pages

        sys.argv.remove("--pages")
        metrics_pages.main()
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.servers, args.clients, args.seconds, args.days = 500, "1,2", 6, 7
        args.repeats = 100
    args.batch = min(args.batch, args.servers)  # one sample per server and second
    name = f"portal_bench_metrics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        ids, token = build(url, args.servers)
        # Every run's samples fall within the last 47 hours (the API takes 48 h).
        origin = time.time() - 47 * 3600
        runs = []
        for clients in (int(c) for c in args.clients.split(",")):
            runs.append(ingest(url, token, ids, clients, args.batch, args.seconds,
                               args.workers, origin))
            origin += 10_000  # the next run's seconds are fresh
        with psycopg.connect(database_url(name, "postgresql"), autocommit=True) as conn:
            raw_size, raw_rows = storage(conn, "metric_raw")
            history = load_history(conn, args.days)
            rollup_size, rollup_rows = storage(conn, "metric_15m")
        timings = series_latency(url, ids, args.repeats)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"\nmetrics bench: {args.servers:,} servers, batches of {args.batch:,} samples "
          f"(3 metrics each), gunicorn {args.workers} workers × 2 threads, "
          f"{os.cpu_count()} cores\n")
    print(f"{'clients':>7} | {'samples/s':>9} | {'samples':>9} | {'batch p95 ms':>12} | load")
    for run in runs:
        print(f"{run['clients']:>7} | {run['rate']:>9,.0f} | {run['accepted']:>9,} | "
              f"{run['p95_batch_ms']:>12.0f} | {run['load']:.1f}")
    per_million = raw_size / max(raw_rows, 1) * 1e6
    print(f"\nstorage, metric_raw: {raw_size / 1e6:,.1f} MB for {raw_rows:,} samples = "
          f"{per_million / 1e6:,.1f} MB per million samples")
    print(f"storage, metric_15m: {rollup_size / 1e6:,.1f} MB for {rollup_rows:,} buckets = "
          f"{rollup_size / max(rollup_rows, 1):,.0f} bytes per bucket")
    print(f"\nseries(): one server, cpu_util + memory_used_gib, last 30 days "
          f"({history:,} buckets of {args.days} days loaded): "
          f"p50 {statistics.median(timings):.1f} ms, "
          f"p95 {timings[int(0.95 * (len(timings) - 1))]:.1f} ms over {len(timings)} reads")


if __name__ == "__main__":
    main()
