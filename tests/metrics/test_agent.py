"""The agent measures what is in its scope with its driver and reports it: in process
(through the same validation as the API) and over HTTP to a live server; the simulate
driver's load is plausible."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.metrics import query
from portal.metrics.targets import targets
from portal.models import AgentPresence, metric_raw, utcnow
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import MetricTarget, SimulateDriver
from portal.provisioning.http import HttpQueue
from portal.provisioning.jobs import ClaimScope
from portal.provisioning.simulated_load import diurnal, is_hot, simulated_samples
from tests import factories as f
from tests.api.live import gunicorn
from tests.metrics.conftest import build_world, rows


def test_targets_carry_what_a_driver_needs(world):
    world.server.hypervisor_uri = "qemu+ssh://kvm-1/system"
    f.vm(world.estate.tenant_a, world.server, world.estate.flavor, status="error")
    node = f.vm(world.estate.tenant_a, world.server, world.estate.flavor,
                k8s_cluster_id=world.cluster.id, role="worker")
    db.session.commit()
    found = {(t.object_type, t.object_id): t for t in targets()}
    vm = found[("vm", world.vm.id)]
    assert vm.name == world.vm.name and vm.hypervisor_uri == "qemu+ssh://kvm-1/system"
    assert vm.baremetal_id == world.server.id and vm.cpu == world.estate.flavor.cpu
    assert found[("baremetal", world.server.id)].cpu == world.server.total_cpu
    cluster = found[("cluster", world.cluster.id)]
    assert (cluster.nodes_total, cluster.nodes_ready, cluster.cpu) == (1, 1, node.cpu)
    assert sum(t.object_type == "vm" for t in found.values()) == 3  # not the one in error
    other_group = ClaimScope(groups=(world.estate.other_group.name,))
    assert {t.object_type for t in targets(other_group)} == {"baremetal"}


def test_simulated_load_is_plausible():
    quiet = next(i for i in range(1, 100) if not is_hot("baremetal", i))
    server = MetricTarget("baremetal", quiet, "kvm-1", 64, 256, 4000)
    vms = [MetricTarget("vm", i, f"vm-{i}", 4, 8, 100, None, quiet) for i in range(2, 14)]
    cluster = MetricTarget("cluster", 5, "k", 12, 24, 300, nodes_total=3, nodes_ready=2)
    rng = random.Random(7)
    samples = simulated_samples([server, *vms, cluster], rng, datetime(2026, 3, 2, 6, 0))
    by_key = {(s["object_type"], s["object_id"]): s["values"] for s in samples}
    for vm in vms:
        values = by_key[("vm", vm.object_id)]
        assert 0 <= values["cpu_util"] <= 1
        assert 0 < values["memory_used_gib"] <= vm.memory
        assert 0 < values["storage_used_gib"] <= vm.storage
    host = by_key[("baremetal", quiet)]
    busy = sum(by_key[("vm", v.object_id)]["cpu_util"] * v.cpu for v in vms)
    assert host["cpu_util"] == pytest.approx((busy + 1) / 64, abs=0.06)
    assert host["memory_used_gib"] == pytest.approx(
        4 + sum(by_key[("vm", v.object_id)]["memory_used_gib"] for v in vms), abs=0.01)
    assert by_key[("cluster", 5)]["nodes_ready"] == 2
    assert by_key[("cluster", 5)]["nodes_total"] == 3
    assert all(s["ts"] == "2026-03-02T06:00:00Z" for s in samples)
    # 14:00 in Taipei is busier than 02:00, and hot spots stay hot.
    assert diurnal(datetime(2026, 3, 2, 6, 0)) > 0.9 > 0.1 > diurnal(datetime(2026, 3, 2, 18))
    hot = [i for i in range(1, 200) if is_hot("baremetal", i)]
    assert 5 <= len(hot) <= 25
    hot_server = MetricTarget("baremetal", hot[0], "hot", 64, 256, 4000)
    [sample] = simulated_samples([hot_server], rng, datetime(2026, 3, 2, 6, 0))
    assert sample["values"]["cpu_util"] > 0.85


def test_the_inline_agent_reports_simulated_samples(world, any_app):
    agent = Agent(DatabaseQueue(any_app), SimulateDriver(delay=0, seed=1), name="inline-x")
    # Three servers and two VMs; the cluster has no nodes yet, so nothing to measure.
    assert agent.measure_once() == 5
    db.session.rollback()
    assert rows() == 5
    found = query.latest("vm", [world.vm.id, world.vm_b.id], "cpu_util",
                         utcnow() - timedelta(minutes=1))
    assert set(found) == {world.vm.id, world.vm_b.id}
    assert all(0 <= value <= 1 for _, value in found.values())
    presence = db.session.get(AgentPresence, "inline-x")
    assert presence.driver == "simulate"


def test_an_http_agent_posts_samples_to_a_live_portal(pg_app):
    world = build_world()
    with gunicorn(pg_app.config["SQLALCHEMY_DATABASE_URI"], workers=1, threads=2) as live:
        agent = Agent(HttpQueue(live, world.operator), SimulateDriver(delay=0, seed=2),
                      name="remote-m", driver_name="simulate", metrics_interval=0)
        accepted = agent.measure_once()
    db.session.rollback()
    kinds = {r.object_type for r in db.session.execute(select(metric_raw.c.object_type))}
    assert accepted == rows() > 0 and kinds == {"baremetal", "vm"}
    assert db.session.get(AgentPresence, "remote-m").driver == "simulate"
