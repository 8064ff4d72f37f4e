"""The exec driver end to end through the job queue, with stand-in commands (small
scripts written by each test): what a command receives, exit codes, messages, output, the
timeout that stops a whole process group, "not yet" for workers waiting on their control
plane, and the invariant of SPEC 8.1 after every job."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from werkzeug.serving import make_server

from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import db
from portal.models import ProvisionJob, VirtualMachine, utcnow
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import Deferred, ProvisionFailed, Work
from portal.provisioning.exec_driver import ExecDriver, job_environment
from portal.provisioning.http import HttpQueue
from portal.vms import service as vms
from tests import factories as f
from tests.api.conftest import token_for
from tests.baremetals.pages import client_for, text
from tests.provisioning.drivers_estate import (
    build_estate,
    drain,
    fresh,
    last_job,
    place,
    place_cluster,
)
from tests.provisioning.invariants import lifecycle_violations

URI = "qemu+ssh://root@kvm-1.mgmt/system"


def stand_in(directory: Path, body: str, name: str = "provision") -> str:
    """An executable Python script; it records its input and environment in record.json."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""\
        import json, os, sys
        job = json.load(sys.stdin)
        env = {k: v for k, v in os.environ.items() if k.startswith("PORTAL_")}
        records = os.path.join(os.path.dirname(os.path.abspath(__file__)), "records.jsonl")
        with open(records, "a") as out:
            out.write(json.dumps({"job": job, "env": env}) + "\\n")
    """) + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def records(directory: Path) -> list[dict]:
    lines = (directory / "records.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def agent_for(app, driver, name="exec-agent"):
    return Agent(DatabaseQueue(app), driver, name=name, lease_seconds=30)


def test_a_command_creates_and_deletes_with_the_job_on_stdin(any_app, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "rp_the-agents-own")
    command = stand_in(tmp_path, """\
        print(f"TASK [{job['action']}] {job['vm']['name']}")
        print("ok: changed=1", file=sys.stderr, flush=True)
        print(f"{job['vm']['name']} {job['action']}d on {job['server']['name']}")
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    agent = agent_for(any_app, ExecDriver(command=command, timeout=30))
    assert drain(agent) == 1

    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("active", "web-01 created on kvm-1")
    job = last_job(vm)
    assert job.result_message == "web-01 created on kvm-1"
    assert "TASK [create] web-01\n" in job.output and "ok: changed=1" in job.output
    (seen,) = records(tmp_path)
    assert seen["job"] == {
        "job": {"id": job.id, "action": "create", "attempt": 1},
        "action": "create",
        "vm": {"id": vm.id, "name": "web-01", "role": "standalone",
               "tenant": {"id": estate.tenant.id, "name": "acme"}},
        "flavor": {"id": estate.flavor.id, "name": "Standard-4C8G", "cpu": 4, "memory": 8,
                   "storage": 50},
        "server": {"id": estate.servers[0].id, "name": "kvm-1", "hypervisor_uri": URI},
        "target_server": None,
        "cluster": None,
        "role": "standalone",
    }
    env = seen["env"]
    assert {k: env[k] for k in ("PORTAL_JOB_ACTION", "PORTAL_VM_NAME", "PORTAL_VM_ID",
                                "PORTAL_TENANT_NAME", "PORTAL_VM_CPU", "PORTAL_VM_MEMORY_GIB",
                                "PORTAL_VM_STORAGE_GIB", "PORTAL_SERVER_NAME",
                                "PORTAL_HYPERVISOR_URI", "PORTAL_CLUSTER_NAME")} == {
        "PORTAL_JOB_ACTION": "create", "PORTAL_VM_NAME": "web-01",
        "PORTAL_VM_ID": str(vm.id), "PORTAL_TENANT_NAME": "acme", "PORTAL_VM_CPU": "4",
        "PORTAL_VM_MEMORY_GIB": "8", "PORTAL_VM_STORAGE_GIB": "50",
        "PORTAL_SERVER_NAME": "kvm-1", "PORTAL_HYPERVISOR_URI": URI,
        "PORTAL_CLUSTER_NAME": ""}
    assert "PORTAL_TOKEN" not in env  # the agent's credentials stay with the agent

    vms.delete_vm(vm, None)
    assert drain(agent) == 1
    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("deleted", "web-01 deleted on kvm-1")
    assert records(tmp_path)[-1]["env"]["PORTAL_JOB_ACTION"] == "delete"


def test_a_failing_command_puts_its_last_line_on_the_vm(app, tmp_path):
    command = stand_in(tmp_path, """\
        print("PLAY [hypervisors]")
        print("\\x1b[31mfatal: no IP address left in VLAN 210\\x1b[0m")
        print("")
        sys.exit(2)
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    drain(agent_for(app, ExecDriver(command=command)))
    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("error", "fatal: no IP address left in VLAN 210")
    assert "PLAY [hypervisors]" in last_job(vm).output
    server = estate.servers[0]
    db.session.refresh(server)
    assert server.available_cpu == server.total_cpu  # the failed VM holds nothing


def test_a_command_that_says_nothing_is_described_by_its_exit(app, tmp_path):
    estate = build_estate([URI])
    vm_1, vm_2 = place(estate, "web-01", "web-02")
    quiet = stand_in(tmp_path, "sys.exit(int(job['vm']['name'][-1]) + 3)\n")
    drain(agent_for(app, ExecDriver(command=quiet)))
    assert fresh(vm_1).status_message == "provision exited with code 4."
    assert fresh(vm_2).status_message == "provision exited with code 5."


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone too
    except FileNotFoundError:
        return False


def test_a_timeout_stops_the_whole_process_group_and_fails_the_job(app, tmp_path):
    command = stand_in(tmp_path, """\
        import subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(os.path.dirname(sys.argv[0]), "child.pid"), "w") as out:
            out.write(str(child.pid))
        print("waiting for the installer", flush=True)
        time.sleep(300)
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    driver = ExecDriver(command=command, timeout=2, kill_grace=1)
    drain(agent_for(app, driver))
    vm = fresh(vm)
    assert (vm.status, vm.status_message) == (
        "error", "provision timed out after 2 s and was stopped (last output: waiting for the "
                 "installer).")
    assert "timed out after 2 s: stopped provision and its process group" in last_job(vm).output
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):
        if not pid_alive(child):
            break
        time.sleep(0.1)
    assert not pid_alive(child), "the command's child outlived the timeout"


def test_a_retry_runs_the_command_again_and_it_finds_its_own_work(app, tmp_path):
    """Idempotence is the command's: it is told the VM's id on every try."""
    command = stand_in(tmp_path, """\
        marker = os.path.join(os.path.dirname(sys.argv[0]), f"vm-{job['vm']['id']}")
        if os.path.exists(marker):
            print(f"{job['vm']['name']} exists already: nothing to do")
            sys.exit(0)
        open(marker, "w").close()
        print("built the disk, then the hypervisor went away")
        sys.exit(1)
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    agent = agent_for(app, ExecDriver(command=command))
    drain(agent)
    assert fresh(vm).status == "error"
    vms.retry_vm(fresh(vm), None)
    drain(agent)
    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("active", "web-01 exists already: nothing to do")
    assert [r["job"]["job"]["attempt"] for r in records(tmp_path)] == [1, 1]
    assert lifecycle_violations() == []


WAIT_FOR_CONTROL_PLANE = """\
    if job["role"] == "worker":
        ready = [n for n in job["cluster"]["nodes"]
                 if n["role"] == "control-plane" and n["status"] == "active"]
        if not ready:
            print("waiting for the control plane")
            sys.exit(75)
        print(f"{job['vm']['name']} joined {ready[0]['name']}")
    else:
        print(f"{job['vm']['name']} initialised")
"""


def expire_leases(agent="exec-agent"):
    db.session.execute(update(ProvisionJob).where(ProvisionJob.claimed_by == agent)
                       .values(lease_expires_at=utcnow()))
    db.session.commit()


def test_a_worker_waits_for_its_control_plane_without_holding_the_agent(app, tmp_path):
    command = stand_in(tmp_path, WAIT_FOR_CONTROL_PLANE)
    estate = build_estate([URI])
    cluster = place_cluster(estate, "k1", workers=1)
    (cp_job,) = jobs.claim("slow-agent")  # the control plane is still being built elsewhere
    agent = agent_for(app, ExecDriver(command=command, retry_delay=600))
    assert drain(agent) == 1  # the worker: not yet

    worker = db.session.scalars(db.select(VirtualMachine).where(
        VirtualMachine.role == "worker")).one()
    job = last_job(worker)
    assert (job.status, job.claimed_by, job.result_message) == (
        "claimed", "exec-agent", "Waiting (try 1): waiting for the control plane")
    assert (job.lease_expires_at - utcnow()).total_seconds() > 500  # back in 600 s, not now
    assert fresh(worker).status == "provisioning"
    assert drain(agent) == 0  # deferred: not claimable before its time
    assert lifecycle_violations() == []

    jobs.complete(cp_job.id, "slow-agent", True, "k1-cp-1 initialised")
    expire_leases()  # as if the 600 s had passed
    assert drain(agent) == 1
    worker, job = fresh(worker), last_job(worker)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert worker.status_message == "k1-worker-1 joined k1-cp-1"
    db.session.refresh(cluster)
    assert cluster.status == "active"
    seen = records(tmp_path)[-1]["job"]["cluster"]
    assert seen["name"] == "k1" and seen["version"] == "1.31.2"
    assert [(n["name"], n["role"], n["status"]) for n in seen["nodes"]] == [
        ("k1-cp-1", "control-plane", "active"), ("k1-worker-1", "worker", "provisioning")]


def test_not_yet_gives_up_after_the_last_attempt(app, tmp_path):
    command = stand_in(tmp_path, WAIT_FOR_CONTROL_PLANE)
    estate = build_estate([URI])
    place_cluster(estate, "k1", workers=1)
    jobs.claim("slow-agent")
    agent = agent_for(app, ExecDriver(command=command, retry_delay=1, max_attempts=2))
    drain(agent)
    expire_leases()
    drain(agent)
    worker = db.session.scalars(db.select(VirtualMachine).where(
        VirtualMachine.role == "worker")).one()
    assert (fresh(worker).status, fresh(worker).status_message) == (
        "error", "Gave up after 2 tries: waiting for the control plane")


def test_a_control_planes_command_may_hand_back_the_kubeconfig(app, tmp_path):
    command = stand_in(tmp_path, """\
        if job["role"] == "control-plane":
            with open(os.environ["PORTAL_KUBECONFIG_OUT"], "w") as out:
                out.write("apiVersion: v1\\nkind: Config\\nclusters: []\\nusers: []\\n"
                          "contexts: []\\n")
        print("done")
    """)
    estate = build_estate([URI])
    cluster = place_cluster(estate, "k1", workers=0)
    drain(agent_for(app, ExecDriver(command=command)))
    assert kubeconfigs.exists(cluster.id)


def test_a_bad_kubeconfig_fails_the_control_plane_with_the_reason(app, tmp_path):
    command = stand_in(tmp_path, """\
        with open(os.environ["PORTAL_KUBECONFIG_OUT"], "w") as out:
            out.write("x" * 70000)
        print("done")
    """)
    estate = build_estate([URI])
    place_cluster(estate, "k1", workers=0)
    drain(agent_for(app, ExecDriver(command=command)))
    cp = db.session.scalars(db.select(VirtualMachine)).one()
    assert fresh(cp).status == "error"
    assert fresh(cp).status_message == (
        "The kubeconfig in $PORTAL_KUBECONFIG_OUT: The kubeconfig is 70000 bytes; at most "
        "65536 are kept.")


def test_long_output_keeps_its_start_and_end_without_nul(app, tmp_path):
    command = stand_in(tmp_path, """\
        print("first line")
        for i in range(20000):
            print(f"line {i:05d} " + "x" * 20)
        print("a NUL: \\x00 here")
        print("last line")
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    drain(agent_for(app, ExecDriver(command=command)))
    output = last_job(vm).output
    assert len(output) <= jobs.OUTPUT_LIMIT
    assert output.startswith("$ ") and "first line\n" in output[:200]
    assert output.endswith("a NUL: \ufffd here\nlast line\n")
    assert "characters cut …]" in output and "\x00" not in output
    assert fresh(vm).status_message == "last line"


def test_a_lost_lease_stops_the_command(app, tmp_path):
    """Another agent took the job (this one's heartbeat is refused): the command stops,
    and this agent's late answer is not recorded."""
    command = stand_in(tmp_path, """\
        import time
        with open(os.path.join(os.path.dirname(sys.argv[0]), "running"), "w") as out:
            out.write(str(os.getpid()))
        time.sleep(300)
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    agent = Agent(DatabaseQueue(app), ExecDriver(command=command, kill_grace=1),
                  name="first", lease_seconds=1)
    worker = threading.Thread(target=agent.run_once, daemon=True)
    worker.start()
    for _ in range(100):
        if (tmp_path / "running").exists():
            break
        time.sleep(0.05)
    db.session.execute(update(ProvisionJob).values(claimed_by="second"))
    db.session.commit()
    worker.join(30)
    assert not worker.is_alive()
    assert not pid_alive(int((tmp_path / "running").read_text()))
    job = last_job(vm)
    assert (job.status, job.claimed_by) == ("claimed", "second")  # the first one's is refused


def test_the_driver_refuses_what_it_cannot_run(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTAL_AGENT_COMMAND", raising=False)
    with pytest.raises(ValueError, match="--command or PORTAL_AGENT_COMMAND"):
        ExecDriver()
    with pytest.raises(ValueError, match="no such command"):
        ExecDriver(command="/nonexistent/provision --site tpe1")
    with pytest.raises(ValueError, match="cannot read the command"):
        ExecDriver(command="provision 'unterminated")
    monkeypatch.setenv("PORTAL_AGENT_COMMAND", "true")
    assert ExecDriver().argv == ["true"]


def test_the_driver_answers_directly_too(tmp_path):
    deferring = ExecDriver(command=stand_in(tmp_path, "print('later'); sys.exit(75)\n"),
                           retry_delay=45)
    job = jobs.ClaimedJob(1, "create", 7, "web", 1, 1, 1, 1, 1, 1)
    with pytest.raises(Deferred) as later:
        deferring.run(job, Work())
    assert (str(later.value), later.value.seconds) == ("later", 45)
    with pytest.raises(ProvisionFailed, match="killed by SIGKILL"):
        ExecDriver(command=stand_in(tmp_path, "os.kill(os.getpid(), 9)\n", "x")).run(job)


def test_the_agent_command_runs_the_exec_driver(app, tmp_path):
    command = stand_in(tmp_path, "print('built by the CLI agent')\n")
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    result = app.test_cli_runner().invoke(
        args=["agent", "run", "--once", "--driver", "exec", "--command", command,
              "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert fresh(vm).status_message == "built by the CLI agent"
    result = app.test_cli_runner().invoke(args=["agent", "run", "--once", "--driver", "exec"],
                                          env={"PORTAL_AGENT_COMMAND": ""})
    assert result.exit_code == 2
    assert "give the command to run: --command or PORTAL_AGENT_COMMAND" in result.output


def test_an_agent_takes_only_the_jobs_of_its_scope(any_app, tmp_path):
    command = stand_in(tmp_path, "print('ok')\n")
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    scoped = Agent(DatabaseQueue(any_app), ExecDriver(command=command), name="tpe2",
                   scope=jobs.ClaimScope(dcs=("tpe2",)))
    assert drain(scoped) == 0
    by_group = Agent(DatabaseQueue(any_app), ExecDriver(command=command), name="pool",
                     scope=jobs.ClaimScope(regions=("r1",), groups=("kvm-pool",)))
    assert drain(by_group) == 1
    assert fresh(vm).status == "active"


def test_the_environment_is_always_set(tmp_path):
    env = job_environment(jobs.ClaimedJob(1, "delete", 2, "web", 3, None, 1, 1, 1, 1,
                                          tenant_name="a\x00b"), "/k", "/d")
    assert env["PORTAL_SERVER_NAME"] == "" and env["PORTAL_TENANT_NAME"] == "ab"
    assert all(isinstance(v, str) for v in env.values())
    assert os.environ.get("PORTAL_JOB_ID") is None


def test_the_vm_page_shows_operators_the_jobs_output(app, tmp_path):
    command = stand_in(tmp_path, """\
        print("connecting to kvm-1.mgmt as root")
        print("web-01 built")
    """)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    drain(agent_for(app, ExecDriver(command=command)))
    job = last_job(vm)
    operator = text(client_for(app, "ops", operator=True).get(f"/vms/{vm.id}"))
    assert f"Output of job {job.id}" in operator
    assert "connecting to kvm-1.mgmt as root\nweb-01 built" in operator
    tenant_admin = text(client_for(app, "acme-admin", tenants=("acme",)).get(f"/vms/{vm.id}"))
    assert "web-01 built" in tenant_admin  # the message, as ever
    assert "connecting to kvm-1.mgmt" not in tenant_admin  # the automation's log is not theirs


def test_a_remote_agent_gets_the_same_job_and_keeps_the_output(app, tmp_path):
    """Over the API (`agent run --url … --token …`) the command receives the same document
    and the output reaches the job's record; the agent's scope travels with the claim."""
    command = stand_in(tmp_path, """\
        print("remote step 1")
        print(f"{job['vm']['name']} built remotely on {job['server']['hypervisor_uri']}")
    """)
    estate = build_estate([URI])
    cluster = place_cluster(estate, "k1", workers=0)
    token = token_for(f.user(operator=True))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        queue = HttpQueue(f"http://127.0.0.1:{server.server_port}", token, timeout=10)
        outside = Agent(queue, ExecDriver(command=command), name="remote-elsewhere",
                        scope=jobs.ClaimScope(regions=("eu-west",)))
        assert outside.run_once() == 0
        remote = Agent(queue, ExecDriver(command=command), name="remote",
                       scope=jobs.ClaimScope(groups=("kvm-pool",)))
        assert remote.run_once() == 1
    finally:
        server.shutdown()
    db.session.rollback()
    (seen,) = records(tmp_path)
    assert seen["job"]["cluster"]["nodes"] == [
        {"vm_id": seen["job"]["vm"]["id"], "name": "k1-cp-1", "role": "control-plane",
         "status": "provisioning", "server": "kvm-1"}]
    assert seen["job"]["server"]["hypervisor_uri"] == URI
    cp = db.session.scalars(db.select(VirtualMachine)).one()
    assert fresh(cp).status_message == f"k1-cp-1 built remotely on {URI}"
    assert "remote step 1\n" in last_job(cp).output
    assert db.session.get(type(cluster), cluster.id).status == "active"


def test_work_keeps_the_start_and_the_end_of_what_a_driver_logs():
    work = Work()
    work.log("start")
    for i in range(10000):
        work.log(f"step {i:05d} " + "." * 30)
    work.log("the end")
    output = work.output
    assert len(output) <= jobs.OUTPUT_LIMIT
    assert output.startswith("start\nstep 00000")
    assert output.endswith("step 09999 " + "." * 30 + "\nthe end\n")
    cut = int(output.split("[… ", 1)[1].split(" characters cut")[0].replace(",", ""))
    marker = f"[… {cut:,} characters cut …]\n"
    assert len(output) - len(marker) + cut == len("start\n") + 10000 * 42 + len("the end\n")
    assert jobs.clean_output("a\x00b") == "a\ufffdb"
    assert jobs.clean_message("x" * 3000) == "x" * 2000


def test_a_job_read_back_from_the_claim_api_is_the_same_job():
    job = jobs.ClaimedJob(
        5, "create", 7, "k1-worker-1", 3, 11, 4, 8, 50, 2, utcnow(), None, "worker", 2,
        tenant_name="acme", spec_id=1, spec_name="S", baremetal_name="kvm-1",
        hypervisor_uri=URI, k8s_cluster_name="k1", k8s_version="1.31.2",
        cluster_nodes=(jobs.ClusterNode(6, "k1-cp-1", "control-plane", "active", "kvm-2"),))
    wire = json.loads(json.dumps({**job.__dict__,
                                  "lease_expires_at": job.lease_expires_at.isoformat(),
                                  "cluster_nodes": [n.__dict__ for n in job.cluster_nodes],
                                  "from_a_newer_portal": True}))
    assert jobs.ClaimedJob.from_dict(wire) == job
