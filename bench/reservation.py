"""Reservation latency and throughput on PostgreSQL (SPEC 7).

    .venv/bin/python -m bench.reservation [--hosts 1000] [--requests 300] [--clients 8]
                                          [--seconds 10]

Builds a throwaway database (from PORTAL_BENCH_DATABASE_URL, default the local server),
a group of N servers and tenants with quota, then measures:

1. latency of one reservation (read, plan, lock, re-validate, write, commit), one client;
2. placements per second with C concurrent clients, each a separate process with its own
   connection, all placing into the same group — and checks afterwards that no counter
   drifted and no server or quota was exceeded.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
import uuid

import psycopg

ADMIN_URL = os.environ.get(
    "PORTAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    figures = "  ".join(f"p{round(p * 100)} {at(p):6.2f} ms" for p in (0.50, 0.95, 0.99))
    return f"{figures}  (n={len(samples)})"


def make_app(url: str):
    from portal import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "PORTAL_AGENT": "off", "TESTING": True})


def build_estate(url: str, hosts: int, tenants: int) -> dict:
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.models import (
        Baremetal,
        BaremetalGroup,
        BaremetalGroupTenantQuota,
        Tenant,
        VirtualMachineSpecification,
    )

    app = make_app(url)
    with app.app_context():
        upgrade()
        group = BaremetalGroup(name="bench", total_cpu=0, total_memory=0, total_storage=0)
        db.session.add(group)
        rng = random.Random(7)
        shapes = [(64, 512, 4000), (96, 768, 8000), (48, 1536, 4000)]
        for i in range(hosts):
            cpu, mem, disk = rng.choice(shapes)
            db.session.add(
                Baremetal(
                    name=f"bm-{i:05d}",
                    serial=f"S{i:06d}",
                    group=group,
                    region="r1",
                    dc=f"dc{i % 3}",
                    total_cpu=cpu,
                    total_memory=mem,
                    total_storage=disk,
                    available_cpu=cpu,
                    available_memory=mem,
                    available_storage=disk,
                )
            )
            group.total_cpu += cpu
            group.total_memory += mem
            group.total_storage += disk
        group.available_cpu, group.available_memory = group.total_cpu, group.total_memory
        group.available_storage = group.total_storage
        tenant_ids = []
        for t in range(tenants):
            tenant = Tenant(name=f"tenant-{t}")
            db.session.add(tenant)
            db.session.add(
                BaremetalGroupTenantQuota(tenant=tenant, group=group, cpu_percent=100 // tenants)
            )
            tenant_ids.append(tenant)
        flavors = [
            VirtualMachineSpecification(name=n, cpu=c, memory=m, storage=s)
            for n, c, m, s in [("s", 2, 4, 40), ("m", 4, 16, 80), ("l", 8, 32, 160)]
        ]
        db.session.add_all(flavors)
        db.session.commit()
        ids = {
            "group": group.id,
            "tenants": [t.id for t in tenant_ids],
            "flavors": [f.id for f in flavors],
        }
        db.engine.dispose()
    return ids


def place(app, tenant_id: int, group_id: int, flavor_id: int, name: str) -> tuple[bool, float]:
    from portal.extensions import db
    from portal.models import BaremetalGroup, Tenant, VirtualMachineSpecification
    from portal.scheduler.reservation import NodeSpec, PlacementRefused, reserve

    start = time.perf_counter()
    tenant = db.session.get(Tenant, tenant_id)
    group = db.session.get(BaremetalGroup, group_id)
    flavor = db.session.get(VirtualMachineSpecification, flavor_id)
    try:
        reserve(tenant, group, [NodeSpec(name, "standalone", flavor)], user=None)
        ok = True
    except PlacementRefused:
        ok = False
    return ok, time.perf_counter() - start


def client_main(url, ids, client, seconds, start, results):
    app = make_app(url)
    rng = random.Random(client)
    placed = refused = 0
    with app.app_context():
        start.wait()
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            tenant = ids["tenants"][client % len(ids["tenants"])]
            ok, _ = place(app, tenant, ids["group"], rng.choice(ids["flavors"]), f"c{client}-{n}")
            placed += ok
            refused += not ok
            n += 1
    results.put((placed, refused))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        ids = build_estate(url, args.hosts, tenants=args.clients)
        app = make_app(url)
        with app.app_context():
            from portal.extensions import db

            for i in range(10):  # warm up connections and caches
                place(app, ids["tenants"][0], ids["group"], ids["flavors"][0], f"warm-{i}")
            samples = []
            for i in range(args.requests):
                ok, elapsed = place(
                    app,
                    ids["tenants"][i % len(ids["tenants"])],
                    ids["group"],
                    ids["flavors"][i % 3],
                    f"lat-{i}",
                )
                samples.append(elapsed)
            print(f"reservation, 1 client, {args.hosts} hosts:  {percentiles(samples)}")
            db.session.remove()
            db.engine.dispose()

        spawn = multiprocessing.get_context("spawn")
        start, results = spawn.Event(), spawn.Queue()
        procs = [
            spawn.Process(target=client_main, args=(url, ids, c, args.seconds, start, results))
            for c in range(args.clients)
        ]
        for p in procs:
            p.start()
        time.sleep(3)  # let every client import and connect
        began = time.perf_counter()
        start.set()
        totals = [results.get() for _ in procs]
        elapsed = time.perf_counter() - began
        for p in procs:
            p.join()
        placed = sum(t[0] for t in totals)
        refused = sum(t[1] for t in totals)
        print(
            f"throughput, {args.clients} clients (processes), {elapsed:.1f} s: "
            f"{placed / elapsed:7.1f} placements/s  ({placed} placed, {refused} refused)"
        )

        with app.app_context():
            from portal.baremetals.counters import counter_drift

            drift = counter_drift()
            print(
                f"violations after the run: {len(drift)} counter drifts"
                + (f" — {drift[:3]}" if drift else "")
            )
            db.engine.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
