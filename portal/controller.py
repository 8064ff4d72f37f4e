"""The controller (SPEC 8.7): `flask --app wsgi controller run [--once] [--interval S]`.

It runs a small registry of background loops. Each loop is guarded by a lease row
(ControllerLease): a controller runs a loop only while it holds that loop's lease, taken
with one conditional UPDATE, so any number of controller copies are safe. Adding a loop is
one line: ``register("name", function_of_now)``.

`PORTAL_CONTROLLER=inline` (set by `make run`) runs the same loops in a thread of the web
process, as `PORTAL_AGENT=inline` runs the agent: the embedded demo's charts roll up and
its policies are evaluated without a second process.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.api.idempotency import prune_idempotency_keys
from portal.autoscaling.service import evaluate_due
from portal.extensions import begin_write, db
from portal.metrics.store import maintain as maintain_metrics
from portal.models import ControllerLease, utcnow
from portal.provisioning import start_with_first_request
from portal.webhooks.service import deliver_due

LEASE_SECONDS = 60
CONTROLLER_MODES = ("inline", "off")

log = logging.getLogger(__name__)

# loop name -> what one pass does, given the time.
LOOPS: dict[str, Callable[[datetime], object]] = {}


def register(name: str, run: Callable[[datetime], object]) -> None:
    LOOPS[name] = run


register("webhook_delivery", lambda now: deliver_due(now))
register("idempotency_prune", lambda now: prune_idempotency_keys(now))
# VM group policies, each evaluated every 30 s whatever the controller's interval.
register("autoscaler", lambda now: evaluate_due(now))
# Measured utilisation: raw → 15-minute → daily rollups as buckets complete, and retention.
register("metrics_rollup", lambda now: maintain_metrics(now))


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(loop: str, holder: str, now: datetime | None = None,
            seconds: int = LEASE_SECONDS) -> bool:
    """Take or renew ``loop``'s lease for ``holder``: one conditional UPDATE that succeeds
    when the lease expired or is already ours; the row is created the first time."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    begin_write()
    taken = db.session.execute(
        update(ControllerLease)
        .where(ControllerLease.name == loop,
               or_(ControllerLease.expires_at.is_(None), ControllerLease.expires_at < now,
                   ControllerLease.holder == holder))
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not taken and db.session.scalar(
            select(ControllerLease.id).where(ControllerLease.name == loop)) is None:
        db.session.add(ControllerLease(name=loop, holder=holder, expires_at=expires))
        try:
            db.session.flush()
            taken = True
        except IntegrityError:  # another controller created it first: theirs
            db.session.rollback()
            return False
    if taken:
        db.session.commit()
    else:
        db.session.rollback()
    return taken


def run_once(holder: str, now: datetime | None = None) -> dict[str, str]:
    """One pass of every loop whose lease this controller holds; what each did."""
    report = {}
    for name, run in LOOPS.items():
        if not acquire(name, holder, now):
            report[name] = "held by another controller"
            continue
        try:
            report[name] = f"done ({run(now or utcnow())})"
        except Exception as error:  # one loop's failure must not stop the others
            db.session.rollback()
            current_app.logger.exception("controller loop %s failed", name)
            report[name] = f"failed: {error}"
    return report


def release(holder: str) -> None:
    """Give up ``holder``'s leases: another controller takes the loops at its next pass,
    not a lease later."""
    begin_write()
    db.session.execute(update(ControllerLease).where(ControllerLease.holder == holder)
                       .values(expires_at=None).execution_options(synchronize_session=False))
    db.session.commit()


class Controller:
    """Pass after pass of the loops every ``interval`` seconds until stopped: in the
    foreground (`controller run`) or in a thread (`start`, PORTAL_CONTROLLER=inline)."""

    def __init__(self, app: Flask, interval: float, holder: str | None = None) -> None:
        self.app, self.interval = app, interval
        self.holder = holder or holder_name()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            with self.app.app_context():
                try:
                    run_once(self.holder)
                except Exception:  # the database away: try again at the next pass
                    log.exception("controller %s: pass failed", self.holder)
                finally:
                    db.session.remove()
            self.stopping.wait(self.interval)

    def start(self) -> Controller:
        self.thread = threading.Thread(target=self.run_forever, name="inline-controller",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Let the pass under way finish, then release the leases (once; unreleased, they
        expire by themselves within LEASE_SECONDS)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
        with self.app.app_context():
            try:
                release(self.holder)
            except Exception:  # the database away at exit
                log.warning("controller %s: leases not released", self.holder, exc_info=True)
            finally:
                db.session.remove()


def init_controller(app: Flask) -> None:
    """PORTAL_CONTROLLER=inline runs the controller in a thread of the web process (the
    embedded demo); `off` leaves the loops to `flask controller run`. Like the inline agent
    it starts with the first request, so CLI commands and the reloader's watching parent
    never run one; it holds the loops' leases like any controller (a `controller run`
    beside it is safe) and stops, releasing them, when the process exits."""
    mode = app.config["PORTAL_CONTROLLER"]
    if mode not in CONTROLLER_MODES:
        raise ValueError(f"PORTAL_CONTROLLER must be one of {', '.join(CONTROLLER_MODES)}, "
                         f"not {mode!r}")
    if mode != "inline":
        return

    def start() -> Controller:
        controller = Controller(app, float(app.config["PORTAL_CONTROLLER_INTERVAL"]),
                                holder=f"inline:{holder_name()}").start()
        atexit.register(controller.stop)
        return controller

    start_with_first_request(app, "inline_controller", start)


controller_cli = AppGroup("controller", help="Background loops: webhook delivery, "
                                             "autoscaling, metrics rollups, …")


@controller_cli.command("run")
@click.option("--once", is_flag=True, help="One pass of each loop, then exit.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between passes.")
def run(once, interval):
    """Run the controller's loops until stopped."""
    holder = holder_name()
    if once:
        for name, outcome in run_once(holder).items():
            click.echo(f"{name}: {outcome}")
        return
    click.echo(f"controller {holder}: running {', '.join(LOOPS)} every {interval} s.")
    controller = Controller(current_app._get_current_object(), interval, holder)
    try:
        controller.run_forever()
    except KeyboardInterrupt:
        controller.stop()
