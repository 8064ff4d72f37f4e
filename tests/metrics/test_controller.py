"""The controller rolls metrics up and prunes them, under its lease: of two controllers,
one does the work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import controller
from portal.extensions import db
from portal.metrics import store
from portal.models import ControllerLease, metric_1d, metric_15m, metric_raw, utcnow
from tests import factories as f
from tests.metrics.conftest import rows


def test_the_controller_rolls_up_and_prunes_under_its_lease(any_app):
    assert "metrics_rollup" in controller.LOOPS
    vm = f.vm(f.tenant(), f.server(group=f.group()), f.flavor())
    db.session.commit()
    # Midday, so that the buckets are all of one day whenever the test runs.
    now = store.floor_bucket(utcnow(), store.DAY) + timedelta(hours=12, minutes=2)
    store.write([{"object_type": "vm", "object_id": vm.id, "ts": ts, "cpu_util": v}
                 for ts, v in ((now - timedelta(minutes=20), 0.2),
                               (now - timedelta(minutes=25), 0.6),
                               (now - timedelta(hours=50), 0.9))])  # past retention
    db.session.commit()

    report = controller.run_once("controller-a", now)
    assert report["metrics_rollup"].startswith("done (15m: ")
    assert controller.run_once("controller-b", now)["metrics_rollup"] == \
        "held by another controller"
    [bucket] = db.session.execute(select(metric_15m)).all()
    assert bucket.cpu_util == pytest.approx(0.4) and bucket.samples == 2
    assert rows(metric_raw) == 2  # the 50-hour-old sample is gone
    assert rows(metric_1d) == 0  # the day has not ended: nothing complete to roll
    lease = db.session.scalar(select(ControllerLease).where(
        ControllerLease.name == "metrics_rollup"))
    assert lease.holder == "controller-a"
    assert controller.run_once("controller-a", now + timedelta(seconds=5))[
        "metrics_rollup"] == "done (nothing due)"


def test_make_run_starts_an_inline_controller_that_rolls_up_and_evaluates(tmp_path):
    """PORTAL_CONTROLLER=inline, as `make run` sets it: the web process rolls the demo's
    samples up and evaluates its scaling policies by itself, holding the loops' leases
    as any controller does, and gives them up when it stops."""
    import re
    import time
    from pathlib import Path

    from sqlalchemy import func

    from portal.autoscaling import service as autoscaling
    from portal.autoscaling.service import PolicyFields
    from portal.models import ScalingPolicy, metric_aggregate_15m
    from portal.vm_groups import service as vm_groups
    from tests.conftest import make_app

    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    recipe = re.search(r"^run:.*?\n\n", makefile, re.S | re.M).group(0)
    assert "PORTAL_CONTROLLER=$${PORTAL_CONTROLLER:-inline}" in recipe
    app = make_app(f"sqlite:///{tmp_path / 'inline.sqlite3'}", PORTAL_CONTROLLER="inline",
                   PORTAL_CONTROLLER_INTERVAL=0.1)
    with app.app_context():
        assert "inline_controller" not in app.extensions  # not for CLI commands
        group, rack = f.group(name="pool-i"), f.rack(name="rack-i")
        server = f.server(group=group, rack=rack, rack_unit=1, cpu=32, memory=128,
                          storage=1000)
        tenant = f.tenant(name="shop-i")
        f.quota(tenant, group)
        flavor = f.flavor(cpu=4, memory=8, storage=50, name="std-4i")
        operator = f.user("ops-i", operator=True)
        db.session.commit()
        web = vm_groups.create_group(vm_groups.build_request(
            operator, name="web", tenant_id=tenant.id, group_id=group.id, spec_id=flavor.id,
            size=2), operator)
        policy_id = autoscaling.create_policy(operator, PolicyFields(
            target_type="vm_group", target_id=web.id, min=1, max=4, metric="cpu_util",
            target=0.5, mode="dry_run")).id
        # A server's samples in a 15-minute bucket that has completed.
        store.write([{"object_type": "baremetal", "object_id": server.id,
                      "ts": utcnow() - timedelta(minutes=20 + m), "cpu_util": 0.5}
                     for m in range(3)])
        db.session.commit()
        db.session.remove()
    assert app.test_client().get("/healthz").status_code == 200
    inline = app.extensions["inline_controller"]
    try:
        with app.app_context():
            deadline = time.monotonic() + 60
            while True:
                evaluated = db.session.get(ScalingPolicy, policy_id).last_evaluated_at
                rolled = db.session.scalar(
                    select(func.count()).select_from(metric_aggregate_15m)
                    .where(metric_aggregate_15m.c.object_type == "group"))
                db.session.remove()
                if evaluated is not None and rolled:
                    break
                assert time.monotonic() < deadline, "no rollup and evaluation within 60 s"
                time.sleep(0.05)
    finally:
        inline.stop()
    assert not inline.thread.is_alive()
    assert app.test_client().get("/healthz").status_code == 200
    assert app.extensions["inline_controller"] is inline  # started once
    with app.app_context():
        leases = db.session.execute(select(ControllerLease)).scalars().all()
        assert {lease.name for lease in leases} == set(controller.LOOPS)
        assert {(lease.holder, lease.expires_at) for lease in leases} == {(inline.holder, None)}
        # Released: another controller takes the loops at once.
        assert controller.run_once("controller-next")["metrics_rollup"].startswith("done")
        db.session.remove()
