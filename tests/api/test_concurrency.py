"""Several client processes race for one tenant's last quota through a multi-process
gunicorn on PostgreSQL: exactly what fits is created, every other request is refused with
quota_exceeded, and every counter still equals the sum of the VMs it counts."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter

from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import Baremetal, VirtualMachine
from tests import factories as f
from tests.api.conftest import token_for
from tests.api.live import create_vms_worker, gunicorn

CLIENTS = 6
ATTEMPTS = 8  # per client: 48 requests
FITS = 13  # VMs of 4 CPU that the quota still allows


def test_clients_racing_for_the_last_quota_over_http(pg_app):
    group = f.group()
    servers = [f.server(group=group, cpu=64, memory=256, storage=4000) for _ in range(4)]
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    for i in range(3):  # already placed: 12 CPU of the 64 allowed
        f.vm(tenant, servers[i], flavor, name=f"old-{i}")
    f.quota(tenant, group, cpu_limit=12 + 4 * FITS)
    admin = f.user(tenants=(tenant.name,))
    db.session.commit()
    token = token_for(admin)
    body = {"tenant_id": tenant.id, "group_id": group.id, "spec_id": flavor.id}

    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    with gunicorn(pg_app.config["SQLALCHEMY_DATABASE_URI"], workers=2, threads=4) as base:
        clients = [
            spawn.Process(target=create_vms_worker,
                          args=(base, token, body, f"c{n}", ATTEMPTS, start, results))
            for n in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(1.0)  # let every client import and wait on the start signal
        started = time.perf_counter()
        start.set()
        outcomes: Counter = Counter()
        for _ in clients:
            outcomes.update(results.get(timeout=180))
        elapsed = time.perf_counter() - started
        for client in clients:
            client.join(timeout=30)
            assert client.exitcode == 0

    requests = CLIENTS * ATTEMPTS
    print(f"\nHTTP race: {requests} requests from {CLIENTS} processes to gunicorn "
          f"(2 workers × 4 threads, PostgreSQL): {outcomes[(201, 'created')]} created, "
          f"{outcomes[(409, 'quota_exceeded')]} quota_exceeded (all: {dict(outcomes)}); "
          f"{elapsed:.2f} s, {requests / elapsed:.0f} requests/s")
    db.session.rollback()
    assert outcomes[(201, "created")] == FITS, outcomes
    assert outcomes[(409, "quota_exceeded")] == requests - FITS, outcomes
    live = db.session.scalar(select(func.count(VirtualMachine.id)).where(
        VirtualMachine.tenant_id == tenant.id, VirtualMachine.status != "deleted"))
    assert live == 3 + FITS
    used_cpu = db.session.scalar(select(func.sum(VirtualMachine.cpu)).where(
        VirtualMachine.tenant_id == tenant.id))
    assert used_cpu == 12 + 4 * FITS  # the quota, exactly
    free = db.session.scalar(select(func.sum(Baremetal.available_cpu)).where(
        Baremetal.group_id == group.id))
    assert free == 4 * 64 - used_cpu
    assert counter_drift() == []
