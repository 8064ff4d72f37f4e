"""Chart pages with a month of measured history (issue #12): server time of the server, VM,
cluster, group and rack pages at each chart range, on PostgreSQL, with 30 days of history
for dataset L's 10,000 servers (goal: p95 < 150 ms).

    .venv/bin/python -m bench.metrics_pages [--size L] [--days 30] [--raw-interval 60]
                                           [--repeat 20] [--database-url URL]

With --database-url (a database this bench seeded before) the agents' newest samples are
dated now; a database of that URL that does not exist yet is created, seeded and kept, so
that later runs (and the old tree's, compared side by side) reuse it. Without it, it
creates a throwaway database from PORTAL_BENCH_DATABASE_URL (default: the local server),
seeds the dataset, writes the history and drops it afterwards.
The history is what the store holds after `days` of agents reporting every `raw-interval`
seconds: 15-minute rollups for the whole period (daily ones too), raw samples for the last
48 hours — written by PostgreSQL itself (generate_series), a diurnal curve per server. The
sampled VM and cluster get their own history. Each page is requested once to warm it (its
template compiled, as bench.pages does), then `repeat` times through the WSGI app as the
operator; the table gives p50/p95, the CPU one request costs (p50: this process and its
PostgreSQL backend, as bench.pages counts it) and the SQL statements of one request.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import datetime

import psycopg
from sqlalchemy import func, select, text

from bench.pages import _backend_cpu_ns, count_statements
from bench.reservation import ADMIN_URL, make_app

RANGES = ("1h", "24h", "7d", "30d")
GOAL_MS = 150

# A diurnal curve (peak mid-afternoon) shifted per object, with a little noise.
_CPU = ("least(1, greatest(0, 0.35 + 0.25 * sin(2 * pi() * extract(epoch FROM t) / 86400 "
        "+ o.id) + 0.05 * random()))")


def _history_sql(table: str, objects: str, step: str, start: str, end: str,
                 rollup: bool) -> str:
    memory = "o.memory * (0.45 + 0.1 * random())"
    storage = "o.storage * 0.3"
    columns = ["cpu_util", "memory_used_gib", "storage_used_gib"]
    values = [_CPU, memory, storage]
    if rollup:
        columns += ["cpu_util_max", "memory_used_gib_max", "storage_used_gib_max", "samples"]
        values += [f"least(1, {_CPU} * 1.1)", f"{memory} * 1.05", storage, "15"]
    return (
        f"INSERT INTO {table} (object_type, object_id, ts, {', '.join(columns)}) "
        f"SELECT o.kind, o.id, t, {', '.join(values)} FROM ({objects}) o, "
        f"LATERAL generate_series({start}, {end}, interval '{step}') t"
    )


_LATEST = ("cpu_util", "memory_used_gib", "storage_used_gib", "pods_pending", "cpu_requested",
           "memory_requested_gib")
LATEST_SQL = (
    "INSERT INTO metric_latest (object_type, object_id, ts, "
    + ", ".join(f"{m}, {m}_ts" for m in _LATEST) + ") "
    "SELECT DISTINCT ON (object_type, object_id) object_type, object_id, ts, "
    + ", ".join(f"{m}, CASE WHEN {m} IS NOT NULL THEN ts END" for m in _LATEST)
    + " FROM metric_raw ORDER BY object_type, object_id, ts DESC ON CONFLICT DO NOTHING"
)


def freshen_latest() -> None:
    """A database seeded earlier: its newest samples are dated now, as agents reporting
    every minute keep them (the dashboard reads only those within 15 minutes)."""
    from portal.extensions import db

    now = "date_trunc('minute', now() AT TIME ZONE 'UTC')"
    db.session.execute(text(
        f"UPDATE metric_latest SET ts = {now}, "
        + ", ".join(f"{m}_ts = CASE WHEN {m} IS NOT NULL THEN {now} END" for m in _LATEST)))
    db.session.commit()


def catch_up(raw_interval: int, extra: dict[str, int]) -> None:
    """A database seeded earlier: the agents' samples since its newest one written now (as
    if they had kept reporting), and rolled up as the controller would have, so that the
    short ranges still have their history."""
    from portal.extensions import db
    from portal.metrics import store

    newest = db.session.scalar(text("SELECT max(ts) FROM metric_raw"))
    now = "date_trunc('minute', now() AT TIME ZONE 'UTC')"
    start = f"TIMESTAMP '{newest.isoformat(' ')}' + interval '{raw_interval} seconds'"
    started = time.perf_counter()
    objects = ("SELECT 'baremetal' AS kind, id, total_memory AS memory, "
               "total_storage AS storage FROM baremetal")
    written = db.session.execute(text(
        _history_sql("metric_raw", objects, f"{raw_interval} seconds", start, now, False))
    ).rowcount
    if "vm" in extra:
        written += db.session.execute(text(_history_sql(
            "metric_raw", f"SELECT 'vm' AS kind, id, memory, storage FROM virtual_machine "
            f"WHERE id = {extra['vm']}", f"{raw_interval} seconds", start, now, False))
        ).rowcount
    if "cluster" in extra:  # clusters report their own metrics
        written += db.session.execute(text(_history_sql(
            "metric_raw", f"SELECT 'cluster' AS kind, id, 16 AS memory, 0 AS storage "
            f"FROM k8s_cluster WHERE id = {extra['cluster']}", f"{raw_interval} seconds",
            start, now, False).replace("cpu_util, memory_used_gib, storage_used_gib",
                                       "pods_pending, cpu_requested, memory_requested_gib", 1))
        ).rowcount
    db.session.commit()
    at = db.session.scalar(text("SELECT now() AT TIME ZONE 'UTC'"))
    store.rollup(at)
    if hasattr(store, "rollup_minutes"):  # the old tree, compared side by side, has none
        store.rollup_minutes(at)
    db.session.execute(text("ANALYZE metric_raw"))
    db.session.commit()
    print(f"  caught up: {written:,} raw samples since {newest:%H:%M}, rolled up "
          f"({time.perf_counter() - started:.0f} s)", flush=True)


def write_history(days: int, raw_interval: int, extra: dict[str, int]) -> dict[str, int]:
    """The store as `days` of reporting leave it; rows per table."""
    from portal.extensions import db

    now = "date_trunc('minute', now() AT TIME ZONE 'UTC')"
    start_15m = f"date_bin('15 minutes', {now} - interval '{days} days', TIMESTAMP '2000-01-01')"
    start_raw = f"{now} - interval '48 hours'"
    counts = {}
    servers = db.session.scalar(select(func.max(text("id"))).select_from(text("baremetal")))
    chunk = 500
    for level, table, step, start, rollup in (
        ("15m", "metric_15m", "15 minutes", start_15m, True),
        ("1d", "metric_1d", "1 day", f"date_trunc('day', {now} - interval '{days} days')", True),
        ("raw", "metric_raw", f"{raw_interval} seconds", start_raw, False),
    ):
        last = {"15m": f"date_bin('15 minutes', {now}, TIMESTAMP '2000-01-01') "
                       "- interval '15 minutes'",
                "1d": f"date_trunc('day', {now}) - interval '1 day'", "raw": now}[level]
        started = time.perf_counter()
        written = 0
        for low in range(0, servers + 1, chunk):
            objects = (
                "SELECT 'baremetal' AS kind, id, total_memory AS memory, "
                "total_storage AS storage FROM baremetal "
                f"WHERE id > {low} AND id <= {low + chunk} ORDER BY id"
            )
            written += db.session.execute(text(
                _history_sql(table, objects, step, start, last, rollup))).rowcount
            db.session.commit()
        for kind, source in (("vm", "virtual_machine"), ("cluster", "k8s_cluster")):
            if kind in extra:
                objects = (f"SELECT '{kind}' AS kind, id, "
                           + ("memory, storage" if kind == "vm" else "16 AS memory, 0 AS storage")
                           + f" FROM {source} WHERE id = {extra[kind]}")
                sql = _history_sql(table, objects, step, start, last, rollup)
                if kind == "cluster":  # clusters report their own metrics
                    sql = sql.replace("cpu_util_max, memory_used_gib_max, storage_used_gib_max",
                                      "pods_pending_max, cpu_requested_max, "
                                      "memory_requested_gib_max")
                    sql = sql.replace("cpu_util, memory_used_gib, storage_used_gib",
                                      "pods_pending, cpu_requested, memory_requested_gib", 1)
                written += db.session.execute(text(sql)).rowcount
                db.session.commit()
        counts[level] = written
        print(f"  {table}: {written:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    # Each object's newest sample, as every write keeps it (the dashboard's hot spots).
    db.session.execute(text(LATEST_SQL))
    db.session.commit()
    # The groups' and racks' aggregates of that history, as the rollup step writes them.
    from portal.metrics import store

    started = time.perf_counter()
    for level in ("15m", "1d"):
        store.rollup_aggregates(level, datetime(2000, 1, 1), datetime(2100, 1, 1))
        db.session.commit()
    if hasattr(store, "rollup_minutes"):  # the minutes of the last hours, likewise
        store.rollup_minutes(db.session.scalar(text("SELECT now() AT TIME ZONE 'UTC'")))
    print(f"  metric_aggregate_*: {time.perf_counter() - started:.0f} s", flush=True)
    # As the controller leaves them: rolled up to the last complete bucket and day.
    db.session.execute(text(
        "INSERT INTO metric_rollup (level, done_until) VALUES "
        f"('15m', date_bin('15 minutes', {now}, TIMESTAMP '2000-01-01')), "
        f"('1d', date_trunc('day', {now}))"))
    db.session.commit()
    for table in ("metric_raw", "metric_15m", "metric_1d", "metric_aggregate_15m",
                  "metric_aggregate_1d"):
        db.session.execute(text(f"ANALYZE {table}"))
    db.session.commit()
    return counts


def samples() -> dict[str, int]:
    """The middle server (and its group and rack), a VM and a cluster."""
    from portal.extensions import db
    from portal.models import Baremetal, K8sCluster, VirtualMachine

    count = db.session.scalar(select(func.count(Baremetal.id)))
    server = db.session.scalars(select(Baremetal).where(Baremetal.rack_id.is_not(None))
                                .order_by(Baremetal.id).offset(count // 2).limit(1)).one()
    vm = db.session.scalar(select(VirtualMachine.id).where(VirtualMachine.status == "active")
                           .order_by(VirtualMachine.id).limit(1))
    cluster = db.session.scalar(select(K8sCluster.id).where(K8sCluster.status == "active")
                                .order_by(K8sCluster.id).limit(1))
    return {"server": server.id, "group": server.group_id, "rack": server.rack_id, "vm": vm,
            "cluster": cluster}


def _p95(timings: list[float]) -> float:
    timings = sorted(timings)
    return timings[min(len(timings) - 1, int(len(timings) * 0.95))]


def panel_times(app, ids: dict[str, int], repeat: int) -> dict[tuple[str, str], float]:
    """p95 of the utilisation panel alone (its statements and its SVG), per page and range:
    what the charts add to a page."""
    from portal.extensions import db
    from portal.metrics.panels import utilisation_panel
    from portal.models import Baremetal, BaremetalGroup, K8sCluster, Rack, VirtualMachine

    models = {"server": Baremetal, "vm": VirtualMachine, "cluster": K8sCluster,
              "group": BaremetalGroup, "rack": Rack}
    kinds = {"server": "baremetal"}
    out = {}
    with app.test_request_context("/"):
        for name, model in models.items():
            obj = db.session.get(model, ids[name])
            for key in RANGES:
                timings = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    utilisation_panel(kinds.get(name, name), obj, key)
                    timings.append((time.perf_counter() - started) * 1000)
                    db.session.rollback()
                out[(name, key)] = _p95(timings)
    return out


def measure(app, ids: dict[str, int], repeat: int) -> float:
    from portal.extensions import db

    client = app.test_client()
    with app.app_context():
        from tests.conftest import csrf_token_from

        login = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"username": "ops-admin", "password": "ops-admin-bench",
                                    "csrf_token": csrf_token_from(login)})
        counter, backends = count_statements(db.engine)
        with db.engine.connect() as conn:
            servers = {name: conn.execute(text(
                f"SELECT count(*) FROM baremetal WHERE {column} = :id"), {"id": ids[name]}
            ).scalar() for name, column in (("group", "group_id"), ("rack", "rack_id"))}
    urls = {
        "server": f"/servers/{ids['server']}",
        "vm": f"/vms/{ids['vm']}",
        "cluster": f"/clusters/{ids['cluster']}",
        "group": f"/groups/{ids['group']}",
        "rack": f"/racks/{ids['rack']}",
    }
    panels = panel_times(app, ids, repeat)
    print(f"(the group holds {servers['group']} servers, the rack {servers['rack']})")
    print(f"{'page':34} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>8} "
          f"{'panel p95':>10}")
    worst = 0.0
    for name, base in urls.items():
        for key in RANGES:
            url = f"{base}?range={key}"
            timings = []
            status = 0
            cpu = []
            # Warm, as bench.pages does: a served process compiles each template once in its
            # life, and the first range of each page kind paid it (its "p95" was the compile).
            client.get(url)
            for _ in range(repeat):
                counter["n"] = 0
                before = _backend_cpu_ns(backends), time.process_time_ns()
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time_ns() - before[1]
                            + _backend_cpu_ns(backends) - before[0]) / 1e6)
                status = response.status_code
                body = response.get_data(as_text=True)
            assert 'class="chart-measured"' in body, f"{url}: no measured line drawn"
            timings.sort()
            p50 = timings[len(timings) // 2]
            p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
            worst = max(worst, p95)
            print(f"{name + ' ' + key:34} {status:>6} {p50:8.1f} {p95:8.1f} "
                  f"{sorted(cpu)[len(cpu) // 2]:7.1f} {counter['n']:>8} "
                  f"{panels[(name, key)]:10.1f}", flush=True)
    # The dashboard's hot spots read the newest sample of every server.
    timings, cpu = [], []
    client.get("/")  # warm
    for _ in range(repeat):
        counter["n"] = 0
        before = _backend_cpu_ns(backends), time.process_time_ns()
        started = time.perf_counter()
        response = client.get("/")
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time_ns() - before[1]
                    + _backend_cpu_ns(backends) - before[0]) / 1e6)
    assert 'id="hot-spots"' in response.get_data(as_text=True)
    timings.sort()
    print(f"{'dashboard (hot spots)':34} {response.status_code:>6} "
          f"{timings[len(timings) // 2]:8.1f} "
          f"{timings[min(len(timings) - 1, int(len(timings) * 0.95))]:8.1f} "
          f"{sorted(cpu)[len(cpu) // 2]:7.1f} {counter['n']:>8}")
    print(f"worst chart-page p95: {worst:.1f} ms (goal < {GOAL_MS} ms); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return worst


def storage_report() -> None:
    from portal.extensions import db

    for table in ("metric_raw", "metric_15m", "metric_1d", "metric_aggregate_15m",
                  "metric_aggregate_1d"):
        rows, size = db.session.execute(text(
            f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")).one()
        per_million = size / rows * 1_000_000 / 2**20 if rows else 0
        print(f"  {table}: {rows:,} rows, {size / 2**20:,.0f} MiB "
              f"({per_million:,.0f} MiB per million rows)")


def run(url: str, args, seed: bool) -> None:
    app = make_app(url)
    with app.app_context():
        if seed:
            from flask_migrate import upgrade

            from portal.seed.dataset import seed_dataset

            upgrade()
            started = time.perf_counter()
            print(seed_dataset(args.size), f"({time.perf_counter() - started:.1f} s)", flush=True)
        ids = samples()
        if not seed:
            catch_up(args.raw_interval, {"vm": ids["vm"], "cluster": ids["cluster"]})
            freshen_latest()
        if seed:
            print(f"History: {args.days} days for every server, raw every "
                  f"{args.raw_interval} s for 48 h:", flush=True)
            write_history(args.days, args.raw_interval, {"vm": ids["vm"],
                                                         "cluster": ids["cluster"]})
        storage_report()
    measure(app, ids, args.repeat)
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()


def ensure_database(url: str) -> bool:
    """Create the database of `url` when it does not exist; whether it was created."""
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"created {name}; it is seeded now and kept", flush=True)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["S", "M", "L"], default="L")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-interval", type=int, default=60,
                        help="seconds between an agent's samples (raw history)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url",
                        help="a database this bench filled before (created, filled and kept "
                             "when it does not exist)")
    args = parser.parse_args()
    if args.database_url:
        created = ensure_database(args.database_url)
        run(args.database_url, args, seed=created)
        return
    name = f"portal_metrics_pages_{uuid.uuid4().hex[:8]}"
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        run(url, args, seed=True)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
