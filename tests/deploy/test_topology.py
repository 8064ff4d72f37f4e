"""The deployment of SPEC 8.7 as processes on this machine: PostgreSQL (a throwaway
database of the running server), PgBouncer in transaction mode (Debian's package, the
shipped settings), the one-shot migration over the direct URL, two gunicorn web replicas
(the shipped configuration) and two provisioning agents and a controller, all of them
through PgBouncer.

It checks what an operator relies on: replicas say 503 on /readyz until the migration has
run (they never migrate themselves); VMs created through either replica become active;
every job is claimed exactly once; a session made on one replica works on the other; and
a rolling restart of the replicas under load — one at a time: out of the balancer, SIGTERM,
a new process, back in once /readyz says so — leaves no request unanswered. The balancer is
the test's own, behaving like any reverse proxy: round robin over the replicas in rotation,
and a refused connection (the request never reached a server) tried on the next one.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select, text

from portal import create_app
from portal.extensions import db
from portal.models import ControllerLease, ProvisionJob, VirtualMachine
from tests import factories as f
from tests.api.conftest import token_for
from tests.conftest import CSRF_RE, ThrowawayPostgres, admin_url, postgres_or_skip
from tests.deploy.processes import (
    ROOT,
    PgBouncer,
    Process,
    gunicorn,
    portal_env,
    wait_http,
)

VMS_PER_REPLICA = 4
LOAD_THREADS = {"page": 2, "api": 2, "create": 1, "wait": 2}
# VMs the load creates at most: well within the test estate (about 250 fit).
MAX_CREATED = 120
TIMEOUT = 60


@dataclass
class Outcome:
    answered: Counter = field(default_factory=Counter)  # (kind, status) -> n
    refused_retried: int = 0
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


class Balancer:
    """Round robin over the replicas in rotation; a refused connection is tried on the
    next replica (it never reached a server, so any request may be retried)."""

    def __init__(self, replicas: dict[str, str]) -> None:
        self.replicas = dict(replicas)
        self.rotation = list(replicas)
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.inflight: Counter = Counter()
        self.picked: Counter = Counter()
        self.served: Counter = Counter()
        self.outcome = Outcome()

    def take_out(self, name: str) -> None:
        with self.lock:
            self.rotation.remove(name)

    def put_back(self, name: str) -> None:
        with self.lock:
            self.rotation.append(name)

    def _pick(self) -> str:
        with self.lock:
            name = self.rotation[next(self.turn) % len(self.rotation)]
            self.inflight[name] += 1
            self.picked[name] += 1
            return name

    def request(self, kind: str, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, opener=None) -> tuple[int, bytes]:
        opener = opener or urllib.request.build_opener()
        for _ in range(len(self.replicas) + 1):
            name = self._pick()
            request = urllib.request.Request(self.replicas[name] + path, data=body,
                                             method=method, headers=headers or {})
            try:
                with opener.open(request, timeout=TIMEOUT) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            except urllib.error.URLError as error:
                if isinstance(error.reason, ConnectionRefusedError):
                    with self.lock:
                        self.outcome.refused_retried += 1
                    continue
                self._lost(kind, name, method, path, error)
                return 0, b""
            except (ConnectionError, TimeoutError, http.client.HTTPException) as error:
                self._lost(kind, name, method, path, error)
                return 0, b""
            finally:
                with self.lock:
                    self.inflight[name] -= 1
            with self.lock:
                self.outcome.answered[(kind, status)] += 1
                self.served[name] += 1
            return status, payload
        self._lost(kind, "-", method, path, "every replica refused the connection")
        return 0, b""

    def _lost(self, kind, name, method, path, error) -> None:
        with self.lock:
            self.outcome.lost.append(f"{kind} {method} {path} on {name}: {error!r}")


def session_opener(base: str, username: str, password: str):
    """A browser: logs in on ``base`` and keeps the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login", timeout=TIMEOUT) as page:
        match = CSRF_RE.search(page.read().decode())
    form = urllib.parse.urlencode({"username": username, "password": password,
                                   "csrf_token": match.group(1) or match.group(2)}).encode()
    with opener.open(urllib.request.Request(base + "/login", data=form), timeout=TIMEOUT):
        pass
    return opener


def api_json(base: str, method: str, path: str, token: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        headers["Idempotency-Key"] = str(uuid.uuid4())
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def status_of(base: str, path: str) -> int:
    try:
        with urllib.request.urlopen(base + path, timeout=TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    """Everything up, through PgBouncer; yields the pieces and stops them all."""
    postgres_or_skip()
    work = tmp_path_factory.mktemp("topology")
    started: list = []
    timings: dict[str, float] = {}
    clock = time.monotonic()
    with ThrowawayPostgres("portal_topology") as direct:
        host, _, port = admin_url().rpartition("@")[2].partition("/")[0].partition(":")
        bouncer = PgBouncer(work, host, int(port or 5432), pool_size=6).start()
        started.append(bouncer)
        pooled = bouncer.url(direct.rpartition("/")[2])
        env = portal_env(pooled, PORTAL_DB_POOLER="transaction",
                         PORTAL_MIGRATION_DATABASE_URL=direct)
        web_env = {**env, "WEB_CONCURRENCY": "2", "PORTAL_WEB_THREADS": "4"}
        try:
            replicas = {}
            for name in ("web-a", "web-b"):
                process, base = gunicorn(name, work, web_env)
                started.append(process.start())
                replicas[name] = (process, base)
            for process, base in replicas.values():
                wait_http(base + "/livez", process)
            timings["replicas up"] = time.monotonic() - clock
            not_ready = {name: status_of(base, "/readyz") for name, (_, base) in replicas.items()}

            migrate = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                env=env, capture_output=True, text=True, timeout=300)
            assert migrate.returncode == 0, migrate.stderr[-3000:]
            timings["migrated"] = time.monotonic() - clock
            for process, base in replicas.values():
                wait_http(base + "/readyz", process, timeout=30)

            estate = seed(direct)
            for i in (1, 2):
                agent = Process(f"agent-{i}", [
                    sys.executable, "-m", "flask", "--app", "wsgi", "agent", "run",
                    "--delay", "0.2", "--poll", "0.2", "--lease", "30"], env, work)
                started.append(agent.start())
            controller = Process("controller", [
                sys.executable, "-m", "flask", "--app", "wsgi", "controller", "run",
                "--interval", "1"], env, work)
            started.append(controller.start())
            timings["all started"] = time.monotonic() - clock
            yield {"replicas": replicas, "direct": direct, "env": web_env, "work": work,
                   "estate": estate, "not_ready": not_ready, "timings": timings,
                   "started": started, "bouncer": bouncer}
        finally:
            for process in reversed(started):
                process.stop()


def seed(direct: str) -> dict:
    app = create_app({"SQLALCHEMY_DATABASE_URI": direct, "SECRET_KEY": "deploy-test-secret",
                      "TESTING": True, "PORTAL_AGENT": "off"})
    with app.app_context():
        group = f.group(name="pool")
        rack = f.rack()
        for unit in (1, 3, 5, 7):
            f.server(group=group, rack=rack, rack_unit=unit, cpu=64, memory=512, storage=8000)
        tenant = f.tenant(name="acme")
        f.quota(tenant, group)
        flavor = f.flavor(cpu=1, memory=1, storage=10)
        operator = f.user("ops", operator=True)
        db.session.commit()
        estate = {"token": token_for(operator), "tenant_id": tenant.id, "group_id": group.id,
                  "spec_id": flavor.id, "user": "ops", "password": f.PASSWORD}
        db.session.remove()
        db.engine.dispose()
    return estate


def vm_body(estate: dict, name: str, count: int = 1) -> dict:
    return {"name": name, "tenant_id": estate["tenant_id"], "group_id": estate["group_id"],
            "spec_id": estate["spec_id"], "count": count}


def test_replicas_never_migrate_and_say_so_until_the_schema_is_at_head(topology):
    assert topology["not_ready"] == {"web-a": 503, "web-b": 503}
    for _, base in topology["replicas"].values():
        assert status_of(base, "/readyz") == 200


def test_a_session_made_on_one_replica_works_on_the_other(topology):
    (_, a), (_, b) = topology["replicas"].values()
    estate = topology["estate"]
    browser = session_opener(a, estate["user"], estate["password"])
    for base in (b, a, b):
        with browser.open(base + "/", timeout=TIMEOUT) as page:
            assert page.status == 200 and page.url == base + "/"
            assert estate["user"] in page.read().decode()


def test_vms_created_through_both_replicas_become_active_each_job_claimed_once(topology):
    estate = topology["estate"]
    ids = []
    for name, (_, base) in topology["replicas"].items():
        status, body = api_json(base, "POST", "/vms", estate["token"],
                                vm_body(estate, f"via-{name}", VMS_PER_REPLICA))
        assert status == 201, body
        ids += [vm["id"] for vm in body["items"]]
    base = next(iter(topology["replicas"].values()))[1]
    for vm_id in ids:
        status, vm = api_json(base, "GET", f"/vms/{vm_id}?wait_for=active&timeout=20",
                              estate["token"])
        assert vm["status"] == "active", vm
    assert_every_job_claimed_once(topology)


def assert_every_job_claimed_once(topology) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": topology["direct"], "TESTING": True,
                      "SECRET_KEY": "x", "PORTAL_AGENT": "off"})
    with app.app_context():
        jobs = db.session.scalars(select(ProvisionJob)).all()
        assert jobs and all(job.status == "succeeded" for job in jobs), [
            (job.id, job.status) for job in jobs if job.status != "succeeded"]
        assert {job.attempts for job in jobs} == {1}  # nobody claimed a job twice
        agents = Counter(job.claimed_by for job in jobs)
        assert len(agents) == 2, agents  # both agents worked
        leases = db.session.scalars(select(ControllerLease)).all()
        assert leases and all(lease.holder for lease in leases)
        db.session.remove()
        db.engine.dispose()


def test_a_rolling_restart_under_load_loses_no_request(topology):
    estate = topology["estate"]
    replicas = topology["replicas"]
    balancer = Balancer({name: base for name, (_, base) in replicas.items()})
    browser = session_opener(next(iter(replicas.values()))[1], estate["user"],
                             estate["password"])
    auth = {"Authorization": f"Bearer {estate['token']}"}
    stop = threading.Event()
    created: list[int] = []

    def page():
        while not stop.is_set():
            status, body = balancer.request("page", "GET", "/", opener=browser)
            if status == 200 and estate["user"].encode() not in body:
                balancer.outcome.unexpected.append("page without the signed-in user")

    def api():
        while not stop.is_set():
            balancer.request("api", "GET", "/api/v1/vms?limit=5", auth)
            balancer.request("status", "GET", "/api/v1/status")

    def create():
        for i in itertools.count():
            if stop.is_set():
                return
            if len(created) >= MAX_CREATED:  # the estate's capacity is finite: a refusal
                time.sleep(0.05)              # (409) is an answer, not what is tested here
                continue
            body = json.dumps(vm_body(estate, f"load-{i}")).encode()
            status, answer = balancer.request("create", "POST", "/api/v1/vms", {
                **auth, "Content-Type": "application/json",
                "Idempotency-Key": str(uuid.uuid4())}, body)
            if status == 201:
                created.append(json.loads(answer)["items"][0]["id"])

    def wait():
        # Held 2 s by the server: some are always in flight when a replica gets SIGTERM.
        while not stop.is_set():
            if created:
                balancer.request("wait", "GET",
                                 f"/api/v1/vms/{created[-1]}?wait_for=deleted&timeout=2", auth)
            else:
                time.sleep(0.1)

    threads = [threading.Thread(target=target, daemon=True)
               for kind, target in (("page", page), ("api", api), ("create", create),
                                    ("wait", wait))
               for _ in range(LOAD_THREADS[kind])]
    clock = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(3)
    in_flight_at_stop = {}
    for name in list(replicas):
        process, base = replicas[name]
        # Stop it while it holds requests — the restart must be tested with work in its
        # hands — but a loaded machine leaves a replica idle now and then: take it out,
        # and if nothing sent to it is still open, put it back and try again.
        deadline = time.monotonic() + 15
        while True:
            balancer.take_out(name)
            time.sleep(0.1)  # requests already sent to it are now in its hands
            if balancer.inflight[name] > 0 or time.monotonic() > deadline:
                break
            balancer.put_back(name)
            time.sleep(0.3)
        in_flight_at_stop[name] = balancer.inflight[name]
        picked_before = balancer.picked[name]
        assert process.stop(signal.SIGTERM) == 0, process.log()[-3000:]
        port = int(base.rpartition(":")[2])
        restarted, base = gunicorn(f"{name}-restarted", topology["work"], topology["env"],
                                   port=port)
        topology["started"].append(restarted.start())
        wait_http(base + "/readyz", restarted, timeout=90)
        replicas[name] = (restarted, base)
        assert balancer.picked[name] == picked_before  # nothing was sent to it while out
        balancer.put_back(name)
        time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    elapsed = time.monotonic() - clock

    outcome = balancer.outcome
    total = sum(outcome.answered.values())
    statuses: Counter = Counter()
    for (_, status), n in outcome.answered.items():
        statuses[status] += n
    print(f"\nrolling restart under load: {total} requests answered in {elapsed:.1f} s "
          f"(by status {dict(statuses)}), {outcome.refused_retried} refused connections "
          f"retried, {len(outcome.lost)} lost; in flight at SIGTERM {in_flight_at_stop}; "
          f"setup {topology['timings']}")
    assert outcome.lost == []
    assert outcome.unexpected == []
    assert set(statuses) == {200, 201}, outcome.answered
    assert all(n > 0 for n in in_flight_at_stop.values()), in_flight_at_stop
    assert len(created) >= 1 and total >= 50
    # Everything created under load was built, each job claimed once.
    base = next(iter(replicas.values()))[1]
    for vm_id in created:
        _, vm = api_json(base, "GET", f"/vms/{vm_id}?wait_for=active&timeout=20",
                         estate["token"])
        assert vm["status"] == "active", vm
    assert_every_job_claimed_once(topology)


def test_the_whole_topology_ran_through_pgbouncer(topology):
    """Every portal process connected to PgBouncer, which kept PostgreSQL's side small."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": topology["direct"], "TESTING": True,
                      "SECRET_KEY": "x", "PORTAL_AGENT": "off"})
    name = topology["direct"].rpartition("/")[2]
    with app.app_context():
        servers = db.session.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name}).scalar_one()
        vms = db.session.scalar(select(func.count(VirtualMachine.id)))
        db.session.remove()
        db.engine.dispose()
    # Two replicas × two workers, two agents and a controller shared at most six server
    # connections (pool_size), plus this one.
    assert servers <= 6 + 1, servers
    assert vms > 0
    for process in topology["started"]:
        if isinstance(process, Process) and process.name.startswith(("agent", "controller")):
            assert process.alive(), process.log()[-2000:]
