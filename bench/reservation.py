"""Reservations on PostgreSQL: the portal against the same database work done directly
(SPEC 7: 8 concurrent clients, zero violations, ≥ 200 placements/s; one decision in a
1,000-server group p95 < 20 ms including the database).

    .venv/bin/python -m bench.reservation [--hosts 1000] [--clients 1,8] [--seconds 8]
                                          [--rounds 2]

One estate is built once (a group of N servers, one tenant with a quota per client, three
flavors) and copied for every measurement, so that each starts from the same state. Each
measurement runs C client processes, each with its own connection, placing single VMs into
the group as fast as it can for the given seconds:

- portal: ``reserve()`` itself (its inputs — tenant, group, flavor — are loaded once per
  client, as a request has them loaded before it reserves);
- direct: the same database work in plain SQL over psycopg — lock the tenant's quota row,
  read the group's active servers (every column the planner uses: the portal reads them
  all only when the group's HostsVersion changed, else their free counters), take the
  first with room,
  insert the VM, its job and its audit row, lock the server (SELECT … FOR NO KEY UPDATE),
  re-check it, update the server's and the group's counters, commit. No quota arithmetic,
  no scoring: the floor of what a reservation costs.

The two alternate within each round, and every measurement ends with the invariant: no
counter drifted, no server was exceeded, and (the portal's runs: the direct path does no
quota arithmetic, so it may overrun a quota) no quota was exceeded; a violation is named
with the side it happened on. The table gives the portal's rate as a
share of the direct rate measured in the same round — on a shared, noisy machine that
ratio is the figure to compare; the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Json

ADMIN_URL = os.environ.get(
    "PORTAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
FLAVORS = [("s", 2, 4, 40), ("m", 4, 16, 80), ("l", 8, 32, 160)]
WARM_UP = 20  # reservations per client before the clock starts


def database_url(name: str) -> str:
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def make_app(url: str):
    """The portal as a web worker serves it (wsgi.py: start-up objects kept out of the
    garbage collector's sight), on this database, without its agent."""
    from portal import create_app, keep_startup_objects

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PORTAL_AGENT": "off", "TESTING": True})
    keep_startup_objects()
    return app


def build_estate(url: str, hosts: int, tenants: int) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import text

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
        tenant_rows = []
        for t in range(tenants):
            tenant = Tenant(name=f"tenant-{t}")
            db.session.add(tenant)
            db.session.add(
                BaremetalGroupTenantQuota(tenant=tenant, group=group, cpu_percent=100 // tenants)
            )
            tenant_rows.append(tenant)
        flavors = [
            VirtualMachineSpecification(name=n, cpu=c, memory=m, storage=s)
            for n, c, m, s in FLAVORS
        ]
        db.session.add_all(flavors)
        db.session.commit()
        # Statistics, as a database in service has them (autovacuum gathers them within a
        # minute of a bulk load). Without any, PostgreSQL's planner takes the group's servers
        # for one row and joins each VM of the usage sum against all of them: a reservation
        # then costs 6× more and grows with every VM placed — a measurement of the missing
        # statistics, not of the portal.
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        ids = {
            "group": group.id,
            "tenants": [t.id for t in tenant_rows],
            "flavors": [f.id for f in flavors],
        }
        db.session.remove()
        db.engine.dispose()
    return ids


# --------------------------------------------------------------------------- the clients


class PortalClient:
    """``reserve()`` in a process of its own, as a web or API worker calls it."""

    def __init__(self, url: str, ids: dict, tenant_id: int) -> None:
        from portal.extensions import db
        from portal.models import BaremetalGroup, Tenant, VirtualMachineSpecification

        self.app = make_app(url)
        self.context = self.app.app_context()
        self.context.push()
        self.tenant = db.session.get(Tenant, tenant_id)
        self.group = db.session.get(BaremetalGroup, ids["group"])
        self.flavors = [db.session.get(VirtualMachineSpecification, i) for i in ids["flavors"]]
        for flavor in self.flavors:
            flavor.name  # noqa: B018  (load every attribute before detaching)
        db.session.expunge_all()  # loaded once, never expired by the commits below
        db.session.rollback()

    def place(self, name: str, flavor: int) -> bool:
        from portal.scheduler.reservation import NodeSpec, PlacementRefused, reserve

        node = NodeSpec(name, "standalone", self.flavors[flavor])
        try:
            reserve(self.tenant, self.group, [node], user=None)
        except PlacementRefused:
            return False
        return True


class DirectClient:
    """The same database work in plain SQL (see the module's docstring)."""

    LOCK_QUOTA = (
        "SELECT id FROM baremetal_group_tenant_quota "
        "WHERE tenant_id = %s AND group_id = %s FOR UPDATE"
    )
    SERVERS = (
        "SELECT b.id, b.name, b.region, b.dc, r.name, b.total_cpu, b.total_memory, "
        "b.total_storage, b.available_cpu, b.available_memory, b.available_storage "
        "FROM baremetal b LEFT OUTER JOIN rack r ON b.rack_id = r.id "
        "WHERE b.group_id = %s AND b.status = 'active'"
    )
    INSERT_VM = (
        "INSERT INTO virtual_machine (name, tenant_id, baremetal_id, spec_id, cpu, memory, "
        "storage, role, status, status_message, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'standalone', 'provisioning', '', "
        "now(), now()) RETURNING id"
    )
    INSERT_JOB = (
        "INSERT INTO provision_job (vm_id, action, status, attempts, result_message, "
        "created_at, updated_at) VALUES (%s, 'create', 'queued', 0, '', now(), now())"
    )
    INSERT_AUDIT = (
        "INSERT INTO audit_event (username, action, object_type, object_id, object_label, "
        "changes, created_at, updated_at) "
        "VALUES ('system', 'place', 'virtual_machine', %s, %s, %s, now(), now())"
    )
    LOCK_SERVER = (
        "SELECT available_cpu, available_memory, available_storage FROM baremetal "
        "WHERE id = %s FOR NO KEY UPDATE"
    )
    TAKE_SERVER = (
        "UPDATE baremetal SET available_cpu = available_cpu - %s, "
        "available_memory = available_memory - %s, available_storage = available_storage - %s, "
        "updated_at = now() WHERE id = %s"
    )
    TAKE_GROUP = (
        "UPDATE baremetal_group SET available_cpu = available_cpu - %s, "
        "available_memory = available_memory - %s, available_storage = available_storage - %s, "
        "updated_at = now() WHERE id = %s"
    )

    def __init__(self, url: str, ids: dict, tenant_id: int) -> None:
        self.conn = psycopg.connect(url)
        self.tenant, self.group = tenant_id, ids["group"]
        self.flavors = []
        with self.conn.cursor() as cur:
            for flavor_id in ids["flavors"]:
                cur.execute(
                    "SELECT id, name, cpu, memory, storage FROM virtual_machine_specification "
                    "WHERE id = %s",
                    (flavor_id,),
                )
                self.flavors.append(cur.fetchone())
        self.conn.commit()

    def place(self, name: str, flavor: int) -> bool:
        flavor_id, flavor_name, cpu, memory, storage = self.flavors[flavor]
        for _ in range(8):
            with self.conn.cursor() as cur:
                if cur.execute(self.LOCK_QUOTA, (self.tenant, self.group)).fetchone() is None:
                    self.conn.rollback()
                    return False
                rows = cur.execute(self.SERVERS, (self.group,)).fetchall()
                server = next(
                    (r for r in rows if r[8] >= cpu and r[9] >= memory and r[10] >= storage), None
                )
                if server is None:
                    self.conn.rollback()
                    return False
                vm_id = cur.execute(
                    self.INSERT_VM, (name, self.tenant, server[0], flavor_id, cpu, memory, storage)
                ).fetchone()[0]
                cur.execute(self.INSERT_JOB, (vm_id,))
                changes = {
                    "baremetal": {"from": None, "to": server[1]},
                    "status": {"from": None, "to": "provisioning"},
                    "flavor": {"from": None, "to": flavor_name},
                }
                cur.execute(self.INSERT_AUDIT, (vm_id, name, Json(changes)))
                free = cur.execute(self.LOCK_SERVER, (server[0],)).fetchone()
                if not (free[0] >= cpu and free[1] >= memory and free[2] >= storage):
                    self.conn.rollback()  # another tenant took the room meanwhile
                    continue
                cur.execute(self.TAKE_SERVER, (cpu, memory, storage, server[0]))
                cur.execute(self.TAKE_GROUP, (cpu, memory, storage, self.group))
            self.conn.commit()
            return True
        return False


CLIENTS = {"portal": PortalClient, "direct": DirectClient}


def client_main(kind, url, ids, client, seconds, ready, start, results):
    tenant = ids["tenants"][client % len(ids["tenants"])]
    worker = CLIENTS[kind](url, ids, tenant)
    rng = random.Random(client)
    for i in range(WARM_UP):
        worker.place(f"warm-{client}-{i}", rng.randrange(len(FLAVORS)))
    ready.release()
    start.wait()
    deadline = time.perf_counter() + seconds
    latencies, refused, n = [], 0, 0
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        ok = worker.place(f"c{client}-{n}", rng.randrange(len(FLAVORS)))
        latencies.append(time.perf_counter() - began)
        refused += not ok
        n += 1
    results.put((latencies, refused))


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    kind: str
    clients: int
    placed: int
    refused: int
    elapsed: float
    latencies: list[float]
    load: tuple[float, float]  # 1-minute load average before and after
    violations: list[str]

    @property
    def rate(self) -> float:
        return self.placed / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def violations(url: str, quotas: bool = True) -> list[str]:
    """Counter drift, and (``quotas``) any tenant over its quota (SPEC 8.1's invariant,
    reservations only: no VM ever leaves ``provisioning`` here). The direct path does no
    quota arithmetic by design, so a fast enough run of it overruns a quota: it is checked
    for drift only."""
    from sqlalchemy import func, select

    from portal.baremetals.counters import counter_drift
    from portal.extensions import db
    from portal.models import (
        DIMENSIONS,
        Baremetal,
        BaremetalGroupTenantQuota,
        VirtualMachine,
    )

    app = make_app(url)
    with app.app_context():
        problems = counter_drift()
        used = {
            row[0]: row[1:]
            for row in db.session.execute(
                select(
                    VirtualMachine.tenant_id,
                    *(func.sum(getattr(VirtualMachine, d)) for d in DIMENSIONS),
                )
                .join(Baremetal, Baremetal.id == VirtualMachine.baremetal_id)
                .group_by(VirtualMachine.tenant_id)
            )
        }
        for quota in db.session.scalars(select(BaremetalGroupTenantQuota)) if quotas else ():
            for d, have in zip(DIMENSIONS, used.get(quota.tenant_id, (0, 0, 0)), strict=True):
                limit = quota.effective_limit(d)
                if limit is not None and have > limit:
                    problems.append(f"tenant {quota.tenant_id} uses {have} {d} of {limit}")
        db.session.remove()
        db.engine.dispose()
    return problems


def measure(kind: str, template: str, ids: dict, clients: int, seconds: float) -> Measurement:
    name = f"{template}_{kind}_{clients}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = database_url(name)
    try:
        spawn = multiprocessing.get_context("spawn")
        ready, start, results = spawn.Semaphore(0), spawn.Event(), spawn.Queue()
        procs = [
            spawn.Process(
                target=client_main,
                args=(kind, url, ids, c, seconds, ready, start, results),
            )
            for c in range(clients)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        start.set()
        totals = [results.get() for _ in procs]
        elapsed = time.perf_counter() - began
        load_after = os.getloadavg()[0]
        for p in procs:
            p.join()
        latencies = [x for lat, _ in totals for x in lat]
        refused = sum(r for _, r in totals)
        return Measurement(
            kind, clients, len(latencies) - refused, refused, elapsed, latencies,
            (load_before, load_after), violations(url, quotas=kind == "portal"),
        )
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(measurements: dict[tuple[int, int, str], Measurement], rounds: int) -> None:
    clients = sorted({c for _, c, _ in measurements})
    print(
        f"\n{'clients':>7} {'round':>5} | {'portal/s':>9} {'p50':>7} {'p95':>7} | "
        f"{'direct/s':>9} {'p50':>7} {'p95':>7} | {'ratio':>6} | {'load':>9} | violations"
    )
    for c in clients:
        ratios = []
        for r in range(rounds):
            portal, direct = measurements[r, c, "portal"], measurements[r, c, "direct"]
            ratios.append(portal.rate / direct.rate)
            loads = portal.load + direct.load
            bad = [f"portal: {v}" for v in portal.violations] + \
                [f"direct: {v}" for v in direct.violations]
            print(
                f"{c:>7} {r + 1:>5} | {portal.rate:>9.1f} {portal.percentile(0.5):>6.2f}m "
                f"{portal.percentile(0.95):>6.2f}m | {direct.rate:>9.1f} "
                f"{direct.percentile(0.5):>6.2f}m {direct.percentile(0.95):>6.2f}m | "
                f"{ratios[-1]:>6.2f} | {min(loads):>4.1f}-{max(loads):<4.1f} | {len(bad)}"
                + (f" {bad[:3]}" if bad else "")
            )
        if rounds > 1:
            print(f"{c:>7} {'med':>5} | portal/direct, median of the rounds: "
                  f"{statistics.median(ratios):.2f}")
    print("(m: milliseconds per reservation, commit included; load: 1-minute load average "
          "before and after)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--clients", default="1,8", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]

    template = f"portal_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}"')
    try:
        ids = build_estate(database_url(template), args.hosts, tenants=max(clients))
        print(f"{args.hosts} servers in one group, {max(clients)} tenants with quota, "
              f"{args.seconds:g} s per measurement, {os.cpu_count()} cores")
        measurements = {}
        for r in range(args.rounds):
            for c in clients:
                order = ("portal", "direct") if r % 2 == 0 else ("direct", "portal")
                for kind in order:
                    m = measurements[r, c, kind] = measure(kind, template, ids, c, args.seconds)
                    print(f"  round {r + 1}, {c} client(s), {kind}: {m.rate:.1f}/s "
                          f"({m.placed} placed, {m.refused} refused)", flush=True)
        report(measurements, args.rounds)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


if __name__ == "__main__":
    main()
