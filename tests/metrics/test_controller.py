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
