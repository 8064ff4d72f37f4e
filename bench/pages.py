"""Server time of every list and detail page on dataset L with PostgreSQL (SPEC 7).

    .venv/bin/python -m bench.pages [--size L] [--repeat 20] [--database-url URL]
                                   [--variants] [--only REGEX]

With --database-url it measures that database; one that does not exist yet is created,
seeded and kept for later runs (and for the old tree's, compared side by side).
Without --database-url it creates a throwaway database from PORTAL_BENCH_DATABASE_URL
(default: the local server), seeds the dataset, and drops it afterwards. Every GET page
without arguments and every detail page (one integer in its URL, filled with a sample id)
is requested `repeat` times through the WSGI app as the operator; the table gives p50/p95
and the number of SQL queries of one request. `--variants` adds, for every list page, each
of its sort links (both directions of every sortable column) and each of its filters set
to its first offered value: the views people actually click.

On a shared machine the wall-clock figures grow with everyone else's load, so the table
also gives the CPU one request costs (p50): this process's CPU time plus that of the
PostgreSQL backend serving it (read from /proc, so only for a server on this machine; with
--serial-sql the backend runs every query itself, so that no parallel worker's CPU goes
uncounted). The load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import uuid

import psycopg
from sqlalchemy import event, func, select

from bench.reservation import ADMIN_URL, make_app

# URL argument → model whose rows fill it; the sample is the row with most children where
# that matters (the heaviest page is the honest one).
SAMPLES = {
    "rack_id": ("Rack", None),
    "baremetal_id": ("Baremetal", None),
    "server_id": ("Baremetal", None),
    "group_id": ("BaremetalGroup", None),
    "tenant_id": ("Tenant", None),
    "vm_id": ("VirtualMachine", None),
    "cluster_id": ("K8sCluster", None),
    "mesh_id": ("ServiceMesh", None),
    "maintainer_id": ("Maintainer", None),
    "spec_id": ("VirtualMachineSpecification", None),
}
EXTRA = [
    "/servers/?sort=-available_cpu",
    "/servers/?q=bm0",
    "/vms/?status=active&page=50",
    "/vms/?q=vm-0001",
    "/search/?q=tpe1-r00",
    "/audit/?object_type=virtual_machine",
]


def sample_ids() -> dict[str, int]:
    from portal import models
    from portal.extensions import db

    ids = {}
    for arg, (model_name, _) in SAMPLES.items():
        model = getattr(models, model_name)
        count = db.session.scalar(select(func.count(model.id)))
        if count:
            ids[arg] = db.session.scalar(
                select(model.id).order_by(model.id).offset(count // 2).limit(1)
            )
    return ids


def pages(app) -> list[str]:
    ids = sample_ids()
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "auth.logout"):
            continue
        if rule.endpoint.startswith("api") or "export" in rule.endpoint:
            continue
        args = list(rule.arguments)
        if not args:
            urls.append(rule.rule)
        elif len(args) == 1 and args[0] in ids and re.search(r"<int:\w+>$", rule.rule):
            urls.append(rule.rule.replace(f"<int:{args[0]}>", str(ids[args[0]])))
    return sorted(set(urls) - {"/login", "/healthz", "/logout"}) + EXTRA


SORT_LINK = re.compile(r'href="([^"]*[?&]sort=[^"]*)"')
FILTERS_FORM = re.compile(r'<form id="list-filters".*?</form>', re.S)
FILTER_SELECT = re.compile(r'<select name="(\w+)"[^>]*>(.*?)</select>', re.S)
OPTION = re.compile(r'<option value="([^"]+)"')


def variants(client, url: str) -> list[str]:
    """The sorted and filtered views a list page links to."""
    import html as html_lib

    page = client.get(url).get_data(as_text=True)
    if 'id="list-filters"' not in page:
        return []
    found = []
    for link in SORT_LINK.findall(page):
        link = html_lib.unescape(link)
        found.append(link)
        if "sort=-" not in link:
            found.append(link.replace("sort=", "sort=-"))
    form = FILTERS_FORM.search(page)
    for name, body in FILTER_SELECT.findall(form.group(0) if form else ""):
        options = OPTION.findall(body)
        if name not in ("per_page", "sort") and options:
            found.append(f"{url}?{name}={options[0]}")
    return list(dict.fromkeys(found))


def _backend_cpu_ns(pids: set[int]) -> int:
    """CPU time the PostgreSQL backends with these pids have used (0 when not local)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def count_statements(engine) -> tuple[dict[str, int], set[int]]:
    """A counter of the SQL statements ``engine`` runs (``counter["n"]``, reset by the
    caller) and the set of PostgreSQL backend pids that ran them (for their CPU time)."""
    counter = {"n": 0}
    backends: set[int] = set()

    def on_execute(conn, *args, **kwargs):
        counter["n"] += 1
        pid = getattr(getattr(conn.connection.dbapi_connection, "info", None),
                      "backend_pid", None)
        if pid:
            backends.add(pid)

    event.listen(engine, "before_cursor_execute", on_execute)
    return counter, backends


def measure(app, repeat: int, with_variants: bool = False, only: str | None = None,
            serial_sql: bool = False) -> None:
    from portal.extensions import db

    client = app.test_client()
    with app.app_context():
        from tests.conftest import csrf_token_from  # the same login helper the tests use

        page = client.get("/login").get_data(as_text=True)
        client.post(
            "/login",
            data={
                "username": "ops-admin",
                "password": "ops-admin-bench",
                "csrf_token": csrf_token_from(page),
            },
        )
        urls = pages(app)
        if with_variants:
            urls += [v for url in urls if url.endswith("/") for v in variants(client, url)]
        if only:
            urls = [url for url in urls if re.search(only, url)]
        urls = list(dict.fromkeys(urls))
        counter, backends = count_statements(db.engine)
        if serial_sql:
            event.listen(db.engine, "connect", lambda dbapi, record: dbapi.execute(
                "SET max_parallel_workers_per_gather = 0"))
            db.engine.dispose()
    print(f"{'page':48} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>8}")
    worst, over = 0.0, 0
    for url in urls:
        samples, cpu = [], []
        status = 0
        client.get(url)  # warm: its backend is known before the first sample
        for _ in range(repeat):
            counter["n"] = 0
            backend_before = _backend_cpu_ns(backends)
            cpu_before = time.process_time_ns()
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time_ns() - cpu_before
                        + _backend_cpu_ns(backends) - backend_before) / 1e6)
            status = response.status_code
        cpu.sort()
        samples.sort()
        p50, p95 = (
            samples[len(samples) // 2],
            samples[min(len(samples) - 1, int(len(samples) * 0.95))],
        )
        worst = max(worst, p95)
        over += p95 > 100
        print(f"{url[:48]:48} {status:>6} {p50:8.1f} {p95:8.1f} {cpu[len(cpu) // 2]:7.1f}"
              f" {counter['n']:>8}")
    print(f"worst p95: {worst:.1f} ms; pages over 100 ms at p95: {over}/{len(urls)}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def seed(app, size: str) -> None:
    from flask_migrate import upgrade

    from portal.seed.dataset import seed_dataset

    with app.app_context():
        upgrade()
        started = time.perf_counter()
        print(seed_dataset(size), f"({time.perf_counter() - started:.1f} s)", flush=True)
        from portal.extensions import db

        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=["S", "M", "L"], default="L")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url",
                        help="a database already seeded (created, seeded and kept when it "
                             "does not exist)")
    parser.add_argument("--variants", action="store_true",
                        help="also every sort and filter of every list page")
    parser.add_argument("--only", help="only the URLs matching this regular expression")
    parser.add_argument("--serial-sql", action="store_true",
                        help="no parallel query workers (their CPU is not counted)")
    args = parser.parse_args()
    if args.database_url:
        from bench.metrics_pages import ensure_database

        if ensure_database(args.database_url):
            seed(make_app(args.database_url), args.size)
        measure(make_app(args.database_url), args.repeat, args.variants, args.only,
                args.serial_sql)
        return
    name = f"portal_pages_{uuid.uuid4().hex[:8]}"
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        app = make_app(url)
        seed(app, args.size)
        measure(app, args.repeat, args.variants, args.only, args.serial_sql)
        with app.app_context():
            from portal.extensions import db

            db.engine.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
