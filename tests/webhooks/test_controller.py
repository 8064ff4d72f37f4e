"""The controller: lease-guarded loops, `controller run --once`."""

from __future__ import annotations

from datetime import timedelta

from portal import controller
from portal.extensions import db
from portal.models import ControllerLease, utcnow
from portal.webhooks.service import emit
from tests import factories as f
from tests.webhooks.helpers import Receiver, deliveries, hook


def test_a_lease_is_held_by_one_controller_until_it_expires(app):
    now = utcnow()
    assert controller.acquire("loop", "a", now, seconds=60)
    assert not controller.acquire("loop", "b", now + timedelta(seconds=30))
    assert controller.acquire("loop", "a", now + timedelta(seconds=30))  # renewed
    assert not controller.acquire("loop", "b", now + timedelta(seconds=89))
    assert controller.acquire("loop", "b", now + timedelta(seconds=91))
    (lease,) = db.session.scalars(db.select(ControllerLease)).all()
    assert lease.holder == "b"


def test_a_second_controller_skips_the_loops_the_first_holds(app):
    now = utcnow()
    first = controller.run_once("a", now)
    second = controller.run_once("b", now)
    assert first["webhook_delivery"].startswith("done")
    assert second == {name: "held by another controller" for name in controller.LOOPS}


def test_run_once_delivers_the_outbox(app, runner):
    tenant = f.tenant()
    with Receiver() as receiver:
        hook(url=receiver.url, allow_private=True)
        emit("vm.status_changed", "vm", 1, tenant.id, "provisioning", {})
        db.session.commit()
        result = runner.invoke(args=["controller", "run", "--once"])
        assert result.exit_code == 0, result.output
        assert "webhook_delivery: done (1)" in result.output
        assert len(receiver.requests) == 1
    assert [r.status for r in deliveries()] == ["delivered"]


def test_registering_a_loop_is_one_line(app):
    seen = []
    controller.register("test_loop", seen.append)
    try:
        controller.run_once("a", utcnow())
    finally:
        del controller.LOOPS["test_loop"]
    assert len(seen) == 1


def test_two_controllers_starting_together_take_a_new_lease_once(pg_app):
    import threading

    now = utcnow()
    for round_ in range(5):
        barrier, won = threading.Barrier(2), []

        def take(holder, loop=f"race-{round_}", barrier=barrier, won=won):
            with pg_app.app_context():
                try:
                    barrier.wait()
                    if controller.acquire(loop, holder, now):
                        won.append(holder)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=take, args=(h,)) for h in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1, won
