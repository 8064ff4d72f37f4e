"""The reference Provision Agent: claim a job, run the driver, report the answer.

It talks to the queue through a small client interface, so the same loop serves the
in-process agent (`PORTAL_AGENT=inline`, `flask agent run`) and, later, remote agents over
the JSON API.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Protocol

from flask import Flask

from portal.extensions import db
from portal.provisioning import jobs
from portal.provisioning.drivers import Deferred, Driver, MetricTarget, ProvisionFailed, Work

log = logging.getLogger(__name__)


class Queue(Protocol):
    def claim(self, agent: str, limit: int, lease_seconds: int,
              scope: jobs.ClaimScope | None = None) -> list[jobs.ClaimedJob]: ...

    def complete(self, job_id: int, agent: str, succeeded: bool, message: str,
                 kubeconfig: str | None = None, output: str = "") -> None: ...

    def heartbeat(self, job_id: int, agent: str, lease_seconds: int,
                  message: str | None = None) -> None: ...

    def metric_targets(self, scope: jobs.ClaimScope | None = None) -> list[MetricTarget]: ...

    def report_metrics(self, agent: str, driver: str, samples: list[dict]) -> int: ...


class DatabaseQueue:
    """The queue in this process's database (inline agent, `flask agent run`)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def claim(self, agent: str, limit: int, lease_seconds: int,
              scope: jobs.ClaimScope | None = None) -> list[jobs.ClaimedJob]:
        with self.app.app_context():
            try:
                return jobs.claim(agent, limit, lease_seconds, scope)
            finally:
                db.session.remove()

    def complete(self, job_id: int, agent: str, succeeded: bool, message: str,
                 kubeconfig: str | None = None, output: str = "") -> None:
        with self.app.app_context():
            try:
                jobs.complete(job_id, agent, succeeded, message, kubeconfig, output)
            finally:
                db.session.remove()

    def heartbeat(self, job_id: int, agent: str, lease_seconds: int,
                  message: str | None = None) -> None:
        with self.app.app_context():
            try:
                jobs.heartbeat(job_id, agent, lease_seconds, message)
            finally:
                db.session.remove()

    def metric_targets(self, scope: jobs.ClaimScope | None = None) -> list[MetricTarget]:
        from portal.metrics.targets import targets

        with self.app.app_context():
            try:
                return targets(scope)
            finally:
                db.session.remove()

    def report_metrics(self, agent: str, driver: str, samples: list[dict]) -> int:
        """Written through the same validation as POST /api/v1/metrics."""
        from portal.metrics.ingest import MAX_SAMPLES, ingest

        accepted = 0
        with self.app.app_context():
            try:
                for start in range(0, len(samples), MAX_SAMPLES):
                    accepted += ingest(samples[start:start + MAX_SAMPLES], agent=agent,
                                       driver=driver)
            finally:
                db.session.remove()
        return accepted


def agent_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


# Seconds between measurements (SPEC 8.4); 0 turns them off.
DEFAULT_METRICS_INTERVAL = 60.0


class Agent:
    def __init__(self, queue: Queue, driver: Driver, name: str | None = None,
                 lease_seconds: int = jobs.DEFAULT_LEASE_SECONDS, poll_seconds: float = 1.0,
                 scope: jobs.ClaimScope | None = None,
                 metrics_interval: float = DEFAULT_METRICS_INTERVAL,
                 driver_name: str | None = None):
        self.queue = queue
        self.driver = driver
        self.name = name or agent_name()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.scope = scope or None
        self.metrics_interval = metrics_interval
        self.driver_name = driver_name or type(driver).__name__.removesuffix("Driver").lower()
        self.stopping = threading.Event()
        self._metrics_thread: threading.Thread | None = None

    def measure_once(self) -> int:
        """Measure what is in scope and report it; the samples accepted."""
        targets = self.queue.metric_targets(self.scope)
        samples = self.driver.measure(targets) if targets else []
        if not samples:
            return 0
        return self.queue.report_metrics(self.name, self.driver_name, samples)

    def _measure_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.measure_once()
            except Exception:  # a portal or hypervisor blip: try at the next interval
                log.exception("agent %s: measuring failed", self.name)
            self.stopping.wait(self.metrics_interval)

    def start_measuring(self) -> None:
        """Measure every ``metrics_interval`` seconds in a thread of its own (so that a
        long job does not stop the charts), until stopped."""
        if self.metrics_interval <= 0 or self._metrics_thread is not None:
            return
        self._metrics_thread = threading.Thread(target=self._measure_forever,
                                                name=f"metrics-{self.name}", daemon=True)
        self._metrics_thread.start()

    def run_once(self) -> int:
        """Claim and finish at most one job; return how many were done."""
        claimed = self.queue.claim(self.name, 1, self.lease_seconds, self.scope)
        for job in claimed:
            kubeconfig, work, later = None, Work(), None
            with Heartbeat(self, job.id, work):
                try:
                    message, ok = self.driver.run(job, work), True
                except ProvisionFailed as failure:
                    message, ok = str(failure), False
                except Deferred as deferred:
                    later = deferred
                except Exception as error:  # a driver's bug fails the job, not the agent
                    log.exception("agent %s: driver failed on job %s", self.name, job.id)
                    message, ok = f"The driver failed unexpectedly: {error!r}", False
            if later is not None:
                self._defer(job, later)
                continue
            if isinstance(message, tuple):  # a control plane came up with its kubeconfig
                message, kubeconfig = message
            try:
                self.queue.complete(job.id, self.name, ok, message, kubeconfig, work.output)
            except jobs.JobError as error:
                # The lease was lost and another agent took the job: its answer counts.
                log.warning("agent %s: %s", self.name, error)
        return len(claimed)

    def _defer(self, job: jobs.ClaimedJob, later: Deferred) -> None:
        """Keep the job claimed, untouched, until ``later.seconds`` from now; then its
        lease expires and any agent claims it again (attempts + 1)."""
        log.info("agent %s: job %s deferred %s s: %s", self.name, job.id, later.seconds, later)
        try:
            self.queue.heartbeat(job.id, self.name, later.seconds,
                                 f"Waiting (try {job.attempts}): {later}")
        except jobs.JobError as error:
            log.warning("agent %s: %s", self.name, error)

    def run_forever(self) -> None:
        self.start_measuring()
        while not self.stopping.is_set():
            try:
                done = self.run_once()
            except Exception:  # keep serving: one bad job or a database blip must not kill it
                log.exception("agent %s: job failed unexpectedly", self.name)
                done = 0
            if not done:
                self.stopping.wait(self.poll_seconds)

    def stop(self) -> None:
        self.stopping.set()


class Heartbeat:
    """Renews the agent's lease on a job every third of the lease while the driver works,
    so that a slow driver never lets another agent build the same VM (SPEC 8.1). A lost
    lease (refused renewal) is logged; the driver's late answer will be refused too."""

    def __init__(self, agent: Agent, job_id: int, work: Work | None = None) -> None:
        self.agent, self.job_id, self.work = agent, job_id, work
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)
        self.lost = False

    def _beat(self) -> None:
        interval = max(self.agent.lease_seconds / 3, 0.05)
        while not self.done.wait(interval):
            try:
                self.agent.queue.heartbeat(self.job_id, self.agent.name, self.agent.lease_seconds)
            except jobs.JobError as error:
                self.lost = True
                if self.work is not None:
                    self.work.lost.set()  # the driver should stop: another agent has it
                log.warning("agent %s: lease lost: %s", self.agent.name, error)
                return
            except Exception:  # a blip: try again at the next beat, the lease still runs
                log.exception("agent %s: heartbeat for job %s failed", self.agent.name,
                              self.job_id)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def start_inline(app: Flask, driver: Driver) -> Agent:
    agent = Agent(DatabaseQueue(app), driver, name=f"inline:{agent_name()}", poll_seconds=0.5,
                  metrics_interval=float(app.config.get("PORTAL_AGENT_METRICS_INTERVAL",
                                                        DEFAULT_METRICS_INTERVAL)))
    thread = threading.Thread(target=agent.run_forever, name="inline-agent", daemon=True)
    thread.start()
    return agent
