"""The examples in docs/examples/ run through the exec driver and the job queue, with
stand-ins for the tools they call (`ansible-playbook`, `ssh`) put first on PATH: each
records how it was called, so the tests check what a real run would have done."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

from sqlalchemy import update

from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import db
from portal.models import K8sCluster, ProvisionJob, VirtualMachine, utcnow
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.exec_driver import ExecDriver
from portal.vms import service as vms
from tests.provisioning.drivers_estate import (
    build_estate,
    drain,
    fresh,
    last_job,
    place,
    place_cluster,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
URI = "qemu+ssh://root@kvm-1.mgmt/system"


def tool(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in for ``name`` on PATH that appends its arguments to <name>.log."""
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, os, sys
        with open({str(bin_dir / (name + '.log'))!r}, "a") as log:
            log.write(json.dumps(sys.argv[1:]) + "\\n")
    """) + textwrap.dedent(body))
    path.chmod(0o755)


def calls(bin_dir: Path, name: str) -> list[list[str]]:
    log = bin_dir / f"{name}.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def environment(bin_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **extra}


def test_the_ansible_wrapper_runs_the_playbook_with_the_job_as_its_variables(app, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool(bin_dir, "ansible-playbook", """\
        extra = sys.argv[sys.argv.index("-e") + 1]
        with open(os.path.join(os.path.dirname(sys.argv[0]), "vars.json"), "a") as out:
            out.write(open(extra[1:]).read().strip() + "\\n")
        print("PLAY [Provision a Resource Portal VM] ****")
        if os.environ.get("STAND_IN_FAILS"):
            print('fatal: [kvm-1]: FAILED! => {"msg": "pool vms has no room"}')
            print("PLAY RECAP ****  kvm-1 : ok=1 changed=0 unreachable=0 failed=1")
            sys.exit(2)
        print("PLAY RECAP ****  kvm-1 : ok=3 changed=2 unreachable=0 failed=0")
    """)
    env = environment(bin_dir, PORTAL_ANSIBLE_PLAYBOOK="/etc/portal/ansible/vm.yml",
                      PORTAL_ANSIBLE_INVENTORY="/etc/portal/ansible/hosts")
    driver = ExecDriver(command=str(EXAMPLES / "ansible" / "portal-ansible"), env=env)
    estate = build_estate([URI])
    (vm,) = place(estate, "web-01")
    agent = Agent(DatabaseQueue(app), driver, name="ansible-agent")
    drain(agent)

    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("active", "web-01: create done by vm.yml on kvm-1")
    (arguments,) = calls(bin_dir, "ansible-playbook")
    assert arguments[:4] == ["-i", "/etc/portal/ansible/hosts", "--limit", "kvm-1"]
    assert arguments[6:] == ["-e", "portal_action=create", "/etc/portal/ansible/vm.yml"]
    variables = json.loads((bin_dir / "vars.json").read_text().splitlines()[0])
    assert variables["vm"]["name"] == "web-01"
    assert variables["flavor"] == {"id": estate.flavor.id, "name": "Standard-4C8G", "cpu": 4,
                                   "memory": 8, "storage": 50}
    assert variables["server"]["hypervisor_uri"] == URI
    assert "PLAY RECAP" in last_job(vm).output

    driver.env["STAND_IN_FAILS"] = "1"
    vms.delete_vm(vm, None)
    drain(agent)
    vm = fresh(vm)
    assert vm.status == "deleting"  # a failed delete keeps holding, ready for a retry
    assert vm.status_message == (
        'Delete failed: fatal: [kvm-1]: FAILED! => {"msg": "pool vms has no room"}')
    assert calls(bin_dir, "ansible-playbook")[-1][-2:] == ["portal_action=delete",
                                                           "/etc/portal/ansible/vm.yml"]


KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n"


def test_the_kubeadm_sketch_bootstraps_the_control_plane_before_the_workers(app, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool(bin_dir, "ssh", f"""\
        command = sys.argv[-1]
        if "token create" in command:
            print("kubeadm join k1-cp-1.k8s.test:6443 --token abc.0123 "
                  "--discovery-token-ca-cert-hash sha256:00ff")
        elif "upload-certs" in command:
            print("[upload-certs] Using certificate key:\\n0123456789abcdef")
        elif command == "cat /etc/kubernetes/admin.conf":
            sys.stdout.write({KUBECONFIG!r})
        elif not command.startswith("test -f"):
            print("ok")
    """)
    env = environment(bin_dir, PORTAL_KUBEADM_DOMAIN="k8s.test")
    driver = ExecDriver(command=str(EXAMPLES / "kubeadm" / "portal-kubeadm"), env=env,
                        retry_delay=600)
    estate = build_estate([URI])
    cluster = place_cluster(estate, "k1", workers=2)
    (cp_job,) = jobs.claim("control-plane-agent")  # the control plane goes to another agent
    agent = Agent(DatabaseQueue(app), driver, name="kubeadm-agent")
    assert drain(agent) == 2  # both workers: not yet
    workers = db.session.scalars(db.select(VirtualMachine).where(
        VirtualMachine.role == "worker").order_by(VirtualMachine.id)).all()
    assert [last_job(w).result_message for w in workers] == [
        "Waiting (try 1): k1-worker-1: waiting for control plane k1-cp-1 (provisioning)",
        "Waiting (try 1): k1-worker-2: waiting for control plane k1-cp-1 (provisioning)"]
    assert not any("kubeadm" in c[-1] for c in calls(bin_dir, "ssh"))

    message, kubeconfig = driver.run(cp_job)  # the other agent builds the control plane
    jobs.complete(cp_job.id, "control-plane-agent", True, message, kubeconfig)
    db.session.execute(update(ProvisionJob).where(ProvisionJob.claimed_by == "kubeadm-agent")
                       .values(lease_expires_at=utcnow()))
    db.session.commit()
    assert drain(agent) == 2

    db.session.expire_all()
    assert db.session.get(K8sCluster, cluster.id).status == "active"
    assert [fresh(w).status_message for w in workers] == [
        "k1-worker-1: joined k1 as worker through k1-cp-1.k8s.test:6443",
        "k1-worker-2: joined k1 as worker through k1-cp-1.k8s.test:6443"]
    assert kubeconfigs.exists(cluster.id)
    remote = [(c[-2].split("@")[1], c[-1].split(" --")[0]) for c in calls(bin_dir, "ssh")
              if not c[-1].startswith("test -f")]
    assert remote == [
        ("k1-cp-1.k8s.test", "kubeadm init"),
        ("k1-cp-1.k8s.test", "cat /etc/kubernetes/admin.conf"),
        ("k1-cp-1.k8s.test", "kubeadm token create"),
        ("k1-worker-1.k8s.test", "kubeadm join k1-cp-1.k8s.test:6443"),
        ("k1-cp-1.k8s.test", "kubeadm token create"),
        ("k1-worker-2.k8s.test", "kubeadm join k1-cp-1.k8s.test:6443"),
    ]
    assert all(c[:4] == ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
               for c in calls(bin_dir, "ssh"))
