"""Many threads and several processes race for the last capacity on PostgreSQL. Afterwards
no quota and no server is exceeded, every counter equals the sum of the VMs it counts, and
exactly what fits was placed: no overshoot, no false refusals."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import Baremetal, VirtualMachine
from tests import factories as f
from tests.reservation.workers import process_main, reserve_many

THREADS = 16
PROCESSES = 2
ATTEMPTS = 4  # per worker: 72 requests in all


def race(app, tenant_id, group_id, spec_id) -> Counter:
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    processes = [
        spawn.Process(target=process_main,
                      args=(url, tenant_id, group_id, spec_id, f"p{n}", ATTEMPTS, start, results))
        for n in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    totals: Counter = Counter()
    lock = threading.Lock()

    def thread_main(n):
        outcome = reserve_many(app, tenant_id, group_id, spec_id, f"t{n}", ATTEMPTS, start)
        with lock:
            totals.update(outcome)

    threads = [threading.Thread(target=thread_main, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=120)
    for _ in processes:
        totals.update(results.get(timeout=120))
    for p in processes:
        p.join(timeout=30)
        assert p.exitcode == 0
    return totals


def placed_vms(tenant_id):
    return db.session.scalar(
        select(func.count(VirtualMachine.id)).where(VirtualMachine.tenant_id == tenant_id)
    )


def test_last_quota_of_one_tenant(pg_app):
    grp = f.group()
    for _ in range(6):
        f.server(group=grp, cpu=64, memory=256, storage=4000)
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp, cpu_limit=4 * 21)  # exactly 21 VMs' worth; capacity for 96
    db.session.commit()
    outcomes = race(pg_app, tenant.id, grp.id, flavor.id)
    db.session.rollback()
    assert outcomes["placed"] == 21, outcomes
    assert outcomes["quota_exceeded"] == (THREADS + PROCESSES) * ATTEMPTS - 21, outcomes
    assert placed_vms(tenant.id) == 21
    assert counter_drift() == []


def test_last_capacity_of_one_server(pg_app):
    grp = f.group()
    server = f.server(group=grp, cpu=40, memory=1000, storage=10000)  # room for 10
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)  # no limits: only the server decides
    db.session.commit()
    outcomes = race(pg_app, tenant.id, grp.id, flavor.id)
    db.session.rollback()
    assert outcomes["placed"] == 10, outcomes
    assert outcomes["insufficient_capacity"] == (THREADS + PROCESSES) * ATTEMPTS - 10, outcomes
    assert db.session.get(Baremetal, server.id).available_cpu == 0
    assert counter_drift() == []


def test_two_tenants_racing_for_shared_servers_lose_nothing(pg_app):
    """Different tenants do not share a quota lock; only the servers' locks and the
    re-plan inside reserve() keep them apart. Room for exactly 12 in all."""
    grp = f.group()
    for _ in range(3):
        f.server(group=grp, cpu=16, memory=64, storage=1000)
    flavor = f.flavor(cpu=4, memory=8, storage=50)
    tenants = [f.tenant(), f.tenant()]
    for t in tenants:
        f.quota(t, grp)
    db.session.commit()
    tenant_ids, group_id, spec_id = [t.id for t in tenants], grp.id, flavor.id
    start = threading.Event()
    totals: Counter = Counter()
    lock = threading.Lock()

    def worker(n):
        outcome = reserve_many(pg_app, tenant_ids[n % 2], group_id, spec_id, f"w{n}", 3, start)
        with lock:
            totals.update(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=120)
    db.session.rollback()
    assert totals["placed"] == 12, totals
    assert sum(totals.values()) == 16 * 3, totals  # every request answered, none crashed
    assert counter_drift() == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_serialises_reservations_too(app, backend):
    """The embedded default: threads on one SQLite file never overshoot either."""
    grp = f.group()
    f.server(group=grp, cpu=24, memory=1000, storage=10000)  # room for 6
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)
    db.session.commit()
    ids = (tenant.id, grp.id, flavor.id)
    start = threading.Event()
    totals: Counter = Counter()
    lock = threading.Lock()

    def worker(n):
        outcome = reserve_many(app, *ids, f"s{n}", 2, start)
        with lock:
            totals.update(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=120)
    db.session.rollback()
    assert totals == Counter({"placed": 6, "insufficient_capacity": 10})
    assert counter_drift() == []
