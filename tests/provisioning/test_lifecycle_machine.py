"""The lifecycle tested the way it broke (issue 10): random interleavings of requests
(create, count>1 create, delete, retry, cluster create / scale / delete / retry, drain of a
server and its return to service) and agent
events (claim, success, failure, crash, lease expiry, heartbeat, late and repeated
answers), with SPEC 8.1's invariant checked after every step — a hypothesis rule-based
state machine on SQLite and on PostgreSQL, and a threaded variant on PostgreSQL where the
same operations race for real.

Examples are bounded (LIFECYCLE_EXAMPLES, default 20 per database) so `make test` stays
quick; raise it to search longer.
"""

from __future__ import annotations

import os
import random
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from portal.baremetals import evacuation
from portal.clusters import service as clusters
from portal.extensions import begin_write, db
from portal.models import (
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    ProvisionJob,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
    utcnow,
)
from portal.provisioning import jobs
from portal.scheduler.reservation import NodeSpec, PlacementRefused, reserve
from portal.vms import service as vms
from tests import factories as f
from tests.conftest import empty_database
from tests.provisioning.invariants import lifecycle_violations

EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "20"))
STEPS = int(os.environ.get("LIFECYCLE_STEPS", "50"))
REFUSED = (PlacementRefused, jobs.JobError, clusters.ClusterError,
           evacuation.EvacuationRefused)


class Estate:
    """One group of three 16-core servers (48 cores) and two tenants whose quotas add up
    to more than that (40 + 24): quota and capacity refusals both happen."""

    def __init__(self) -> None:
        group = f.group()
        for _ in range(3):
            f.server(group=group, cpu=16, memory=64, storage=400)
        tenants = [f.tenant(), f.tenant()]
        f.quota(tenants[0], group, cpu_limit=40)
        f.quota(tenants[1], group, cpu_limit=24)
        flavors = [f.flavor(cpu=2, memory=4, storage=20), f.flavor(cpu=6, memory=16, storage=80)]
        self.user_id = f.user(operator=True).id
        self.group_id = group.id
        self.tenant_ids = [t.id for t in tenants]
        self.flavor_ids = [fl.id for fl in flavors]
        db.session.commit()
        self.seq = 0
        self.lock = threading.Lock()

    def name(self, prefix: str) -> str:
        with self.lock:
            self.seq += 1
            return f"{prefix}{self.seq}"


class Ops:
    """Every request and agent event, each one transaction as the web layer and the agents
    run it (SQLite writers take the write lock first, as a web request does). Refusals are
    fine; anything else is a bug."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate

    @property
    def user(self) -> User:
        return db.session.get(User, self.estate.user_id)

    def _do(self, action, *args) -> object:
        begin_write()
        try:
            return action(*args)
        except REFUSED:
            db.session.rollback()
            return None
        finally:
            db.session.rollback()  # every service commits what it did; drop the rest

    def ids(self, model, *where) -> list[int]:
        return list(db.session.scalars(select(model.id).where(*where).order_by(model.id)))

    def create_vms(self, tenant: int, flavor: int, count: int) -> None:
        e = self.estate
        base = e.name("vm")
        tenant_row = db.session.get(Tenant, e.tenant_ids[tenant])
        flavor_row = db.session.get(VirtualMachineSpecification, e.flavor_ids[flavor])
        nodes = [NodeSpec(f"{base}-{i}" if count > 1 else base, "standalone", flavor_row)
                 for i in range(1, count + 1)]
        group = db.session.get(BaremetalGroup, e.group_id)
        self._do(lambda: reserve(tenant_row, group, nodes, user=self.user))

    def create_cluster(self, tenant: int, workers: int) -> None:
        e = self.estate
        name = e.name("k")
        tenant_row = db.session.get(Tenant, e.tenant_ids[tenant])
        flavor = db.session.get(VirtualMachineSpecification, e.flavor_ids[0])
        cluster = K8sCluster(name=name, tenant_id=tenant_row.id, group_id=e.group_id,
                             version="1.31.2", status="provisioning")
        nodes = [NodeSpec(f"{name}-cp-1", "control-plane", flavor)] + [
            NodeSpec(f"{name}-worker-{i}", "worker", flavor) for i in range(1, workers + 1)]
        group = db.session.get(BaremetalGroup, e.group_id)
        self._do(lambda: reserve(tenant_row, group, nodes, user=self.user, cluster=cluster))

    def delete_vm(self, pick: int) -> None:
        ids = self.ids(VirtualMachine, VirtualMachine.k8s_cluster_id.is_(None),
                       VirtualMachine.status != "deleted")
        if ids:
            self._do(lambda: vms.delete_vm(db.session.get(VirtualMachine, ids[pick % len(ids)]),
                                           self.user))

    def retry_vm(self, pick: int) -> None:
        ids = self.ids(VirtualMachine, VirtualMachine.status.in_(("error", "deleting")))
        if ids:
            self._do(lambda: vms.retry_vm(db.session.get(VirtualMachine, ids[pick % len(ids)]),
                                          self.user))

    def _cluster(self, pick: int) -> K8sCluster | None:
        ids = self.ids(K8sCluster, K8sCluster.status != "deleted")
        return db.session.get(K8sCluster, ids[pick % len(ids)]) if ids else None

    def scale_cluster(self, pick: int, target: int) -> None:
        if (cluster := self._cluster(pick)) is not None:
            self._do(lambda: clusters.scale_workers(cluster, target, self.user))

    def delete_cluster(self, pick: int) -> None:
        if (cluster := self._cluster(pick)) is not None:
            self._do(lambda: clusters.delete_cluster(cluster, self.user))

    def retry_cluster(self, pick: int) -> None:
        if (cluster := self._cluster(pick)) is not None:
            self._do(lambda: clusters.retry_failed_nodes(cluster, self.user))

    def evacuate(self, pick: int) -> None:
        ids = self.ids(Baremetal)
        server = db.session.get(Baremetal, ids[pick % len(ids)])
        self._do(lambda: evacuation.evacuate([server], self.user,
                                             label=("baremetal", server.id, server.name)))

    def return_to_service(self, pick: int) -> None:
        ids = self.ids(Baremetal)
        server = db.session.get(Baremetal, ids[pick % len(ids)])
        self._do(lambda: evacuation.return_to_service([server], self.user))

    # agents

    def claim(self, agent: str, limit: int) -> list[tuple[int, str]]:
        try:
            return [(job.id, agent) for job in jobs.claim(agent, limit, 60)]
        finally:
            db.session.rollback()

    def answer(self, job_id: int, agent: str, succeeded: bool) -> bool:
        try:
            jobs.complete(job_id, agent, succeeded, "ok" if succeeded else "driver failed")
            return True
        except jobs.JobError:
            return False  # late, repeated, cancelled or someone else's: refused
        finally:
            db.session.rollback()

    def heartbeat(self, job_id: int, agent: str) -> None:
        try:
            jobs.heartbeat(job_id, agent, 60)
        except jobs.JobError:
            pass
        finally:
            db.session.rollback()

    def expire_leases(self) -> None:
        """Time passes: every lease runs out. Leases expire one by one (each its own
        transaction), as they do in a real database where nothing updates them at once."""
        ids = self.ids(ProvisionJob, ProvisionJob.status == "claimed")
        db.session.rollback()
        for job_id in ids:
            begin_write()
            db.session.execute(
                update(ProvisionJob)
                .where(ProvisionJob.id == job_id, ProvisionJob.status == "claimed")
                .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()


class LifecycleMachine(RuleBasedStateMachine):
    app = None  # set per database by the test

    def __init__(self) -> None:
        super().__init__()
        empty_database(self.app)
        self.ctx = self.app.app_context()
        self.ctx.push()
        self.ops = Ops(Estate())
        self.in_hand: list[tuple[int, str]] = []  # claims an agent is working on
        self.ever: list[tuple[int, str]] = []  # every claim, for late answers
        self.doomed: set[int] = set()  # VMs seen deleting or deleted

    def teardown(self) -> None:
        db.session.remove()
        self.ctx.pop()

    picks = st.integers(0, 1000)

    @rule(tenant=st.integers(0, 1), flavor=st.integers(0, 1), count=st.integers(1, 3))
    def create_vms(self, tenant, flavor, count):
        self.ops.create_vms(tenant, flavor, count)

    @rule(tenant=st.integers(0, 1), workers=st.integers(0, 3))
    def create_cluster(self, tenant, workers):
        self.ops.create_cluster(tenant, workers)

    @rule(pick=picks)
    def delete_vm(self, pick):
        self.ops.delete_vm(pick)

    @rule(pick=picks)
    def retry_vm(self, pick):
        self.ops.retry_vm(pick)

    @rule(pick=picks, workers=st.integers(0, 4))
    def scale_cluster(self, pick, workers):
        self.ops.scale_cluster(pick, workers)

    @rule(pick=picks)
    def delete_cluster(self, pick):
        self.ops.delete_cluster(pick)

    @rule(pick=picks)
    def retry_cluster(self, pick):
        self.ops.retry_cluster(pick)

    @rule(pick=picks)
    def evacuate(self, pick):
        self.ops.evacuate(pick)

    @rule(pick=picks)
    def return_to_service(self, pick):
        self.ops.return_to_service(pick)

    @rule(agent=st.sampled_from(["agent-a", "agent-b"]), limit=st.integers(1, 4))
    def claim(self, agent, limit):
        got = self.ops.claim(agent, limit)
        self.in_hand += got
        self.ever += got

    @rule(outcomes=st.lists(st.booleans(), min_size=1, max_size=4))
    def agent_round(self, outcomes):
        """An agent at full speed: claims a batch and answers each job at once."""
        got = self.ops.claim("agent-c", len(outcomes))
        self.ever += got
        for (job_id, agent), succeeded in zip(got, outcomes, strict=False):
            self.ops.answer(job_id, agent, succeeded)

    @rule(pick=picks, succeeded=st.booleans())
    def agent_answers(self, pick, succeeded):
        if self.in_hand:
            self.ops.answer(*self.in_hand.pop(pick % len(self.in_hand)), succeeded)

    @rule(pick=picks)
    def agent_crashes(self, pick):
        if self.in_hand:  # it forgets the job; the lease runs out some time later
            self.in_hand.pop(pick % len(self.in_hand))

    @rule()
    def leases_expire(self):
        self.ops.expire_leases()

    @rule(pick=picks)
    def agent_heartbeats(self, pick):
        if self.in_hand:
            self.ops.heartbeat(*self.in_hand[pick % len(self.in_hand)])

    @rule(pick=picks, succeeded=st.booleans())
    def late_or_repeated_answer(self, pick, succeeded):
        if self.ever:
            self.ops.answer(*self.ever[pick % len(self.ever)], succeeded)

    @invariant()
    def counted_exactly_once(self):
        db.session.rollback()
        db.session.expire_all()
        assert lifecycle_violations() == []

    @invariant()
    def a_deleted_vm_never_comes_back(self):
        statuses = dict(db.session.execute(select(VirtualMachine.id, VirtualMachine.status)).all())
        back = {i: statuses[i] for i in self.doomed if statuses[i] not in ("deleting", "deleted")}
        assert back == {}
        self.doomed |= {i for i, status in statuses.items() if status in ("deleting", "deleted")}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_lifecycle_state_machine(request, backend):
    LifecycleMachine.app = request.getfixturevalue(f"{backend}_app")
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def _drain(ops: Ops) -> None:
    """Agents finish every job so that the end state is settled."""
    for _ in range(200):
        claimed = ops.claim("drainer", 50)
        if not claimed:
            return
        for job_id, agent in claimed:
            ops.answer(job_id, agent, True)


THREADS, OPS_PER_THREAD = 4, 40


@pytest.mark.parametrize("seed", range(int(os.environ.get("LIFECYCLE_THREAD_SEEDS", "3"))))
def test_lifecycle_races_on_postgresql(postgresql_app, seed):
    """Four threads, each a web request or an agent at a time, racing on one small
    estate; the invariant holds after the storm and after the agents settled it."""
    app = postgresql_app
    empty_database(app)
    with app.app_context():
        estate = Estate()
        db.session.remove()
    errors: list[BaseException] = []
    deadlocks = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        agent = f"agent-{n}"
        with app.app_context():
            ops = Ops(estate)
            held: list[tuple[int, str]] = []
            start.wait()
            for _ in range(OPS_PER_THREAD):
                choice = rng.random()
                try:
                    if choice < 0.15:
                        ops.create_vms(rng.randrange(2), rng.randrange(2), rng.randint(1, 3))
                    elif choice < 0.22:
                        ops.create_cluster(rng.randrange(2), rng.randint(0, 3))
                    elif choice < 0.32:
                        ops.delete_vm(rng.randrange(1000))
                    elif choice < 0.38:
                        ops.retry_vm(rng.randrange(1000))
                    elif choice < 0.43:
                        ops.scale_cluster(rng.randrange(1000), rng.randint(0, 4))
                    elif choice < 0.47:
                        ops.delete_cluster(rng.randrange(1000))
                    elif choice < 0.50:
                        ops.retry_cluster(rng.randrange(1000))
                    elif choice < 0.53:
                        ops.evacuate(rng.randrange(1000))
                    elif choice < 0.55:
                        ops.return_to_service(rng.randrange(1000))
                    elif choice < 0.68:
                        held += ops.claim(agent, rng.randint(1, 3))
                    elif choice < 0.88 and held:
                        ops.answer(*held.pop(rng.randrange(len(held))), rng.random() < 0.7)
                    elif choice < 0.93 and held:
                        ops.heartbeat(*held[rng.randrange(len(held))])
                    elif choice < 0.96:
                        ops.expire_leases()
                    elif held:
                        held.pop(rng.randrange(len(held)))  # crash: forget the job
                except OperationalError as error:  # a deadlock is a bug in the lock order
                    db.session.rollback()
                    deadlocks.append(str(error.orig))
                except BaseException as error:  # noqa: BLE001 - reported below
                    db.session.rollback()
                    errors.append(error)
            db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [] and deadlocks == []
    with app.app_context():
        assert lifecycle_violations() == []
        ops = Ops(estate)
        ops.expire_leases()
        _drain(ops)
        db.session.expire_all()
        assert lifecycle_violations() == []
        live = db.session.scalar(
            select(ProvisionJob.id).where(ProvisionJob.status.in_(("queued", "claimed"))).limit(1)
        )
        assert live is None
        db.session.remove()
