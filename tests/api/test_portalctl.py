"""portalctl end to end: the installed command against a live gunicorn server, with a
remote (HTTP) agent building what it asks for; JSON on stdout, and the exit codes a
pipeline branches on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import VirtualMachine
from portal.portalctl import EXIT_CODES
from portal.provisioning.agent import Agent
from portal.provisioning.drivers import SimulateDriver
from portal.provisioning.http import HttpQueue
from tests.api.conftest import build_estate
from tests.api.live import free_port, gunicorn

PORTALCTL = str(Path(sys.executable).with_name("portalctl"))


@pytest.fixture(scope="module")
def live(postgresql_app):
    with gunicorn(postgresql_app.config["SQLALCHEMY_DATABASE_URI"], workers=2,
                  threads=2) as base:
        yield base


@pytest.fixture
def estate(pg_app):
    return build_estate()


@contextmanager
def background_agent(live, token, **driver):
    """A remote agent working in the background, as `flask agent run --url` would."""
    worker = Agent(HttpQueue(live, token), SimulateDriver(**{"delay": 0.2, **driver}),
                   name="background-agent", poll_seconds=0.1)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=10)


@pytest.fixture
def agent(live, estate):
    with background_agent(live, estate.operator) as worker:
        yield worker


def portalctl(live, token, *args, env=None):
    environment = {**os.environ, "PORTAL_URL": live, "PORTAL_TOKEN": token, **(env or {})}
    result = subprocess.run([PORTALCTL, *map(str, args)], capture_output=True, text=True,
                            env=environment, timeout=120)
    body = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, body, result.stderr


def create_args(estate, *extra, name="ci"):
    return ("vm", "create", "--tenant", estate.tenant_a.id, "--group", estate.group.id,
            "--flavor", estate.flavor.id, "--name", name, *extra)


def test_create_wait_list_show_delete_wait(live, estate, agent):
    code, created, err = portalctl(live, estate.admin_a, *create_args(
        estate, "--count", 2, "--wait", "--timeout", 60, "--idempotency-key", "build-1"))
    assert code == 0, err
    assert [vm["status"] for vm in created["items"]] == ["active", "active"]
    assert [vm["name"] for vm in created["items"]] == ["ci-1", "ci-2"]
    first = created["items"][0]["id"]

    code, listed, err = portalctl(live, estate.admin_a, "vm", "list", "--tenant",
                                  estate.tenant_a.id, "--status", "active")
    assert code == 0, err
    assert {vm["id"] for vm in listed["items"]} == {vm["id"] for vm in created["items"]}

    code, shown, err = portalctl(live, estate.admin_a, "vm", "show", first)
    assert code == 0 and shown["name"] == "ci-1" and shown["baremetal_id"] is not None

    code, deleted, err = portalctl(live, estate.admin_a, "vm", "delete", first, "--wait",
                                   "--timeout", 60)
    assert code == 0, err
    assert deleted["status"] == "deleted"
    db.session.rollback()
    assert db.session.get(VirtualMachine, first).status == "deleted"


def test_not_found_exits_3(live, estate):
    code, body, err = portalctl(live, estate.admin_a, "vm", "show", 999999)
    assert code == 3 and body["code"] == "not_found" and "404" in err


def test_refused_by_quota_exits_4_and_creates_nothing(live, estate):
    code, body, err = portalctl(live, estate.admin_a, *create_args(estate, "--count", 5))
    assert code == 4, err
    assert body["code"] == "quota_exceeded"
    db.session.rollback()
    assert db.session.query(VirtualMachine).count() == 0


def test_bad_token_exits_8(live, estate):
    code, body, err = portalctl(live, "rp_not-a-token", "vm", "list")
    assert code == 8 and "401" in err


def test_validation_error_exits_2_and_creates_nothing(live, estate):
    code, body, err = portalctl(live, estate.admin_a, *create_args(estate, name="bad name!"))
    assert code == 2 and body["code"] == "validation_error", err
    db.session.rollback()
    assert db.session.query(VirtualMachine).count() == 0


def test_usage_errors_exit_2(live, estate):
    code, _, err = portalctl(live, estate.admin_a, "vm", "create", "--tenant", "x")
    assert code == 2 and "usage:" in err
    code, _, err = portalctl(live, "", "vm", "list", env={"PORTAL_TOKEN": ""})
    assert code == 2 and "PORTAL_TOKEN" in err
    code, _, err = portalctl(live, estate.admin_a, "cluster", "create", "--name", "k")
    assert code == 2 and "--tenant" in err


def test_timeout_waiting_exits_5(live, estate):
    """No agent runs: the VM stays provisioning past the timeout."""
    code, body, err = portalctl(live, estate.admin_a, *create_args(
        estate, "--wait", "--timeout", 2))
    assert code == 5, err
    assert body["status"] == "provisioning" and "after 2s" in err


def test_failed_build_exits_6(live, estate):
    with background_agent(live, estate.operator, delay=0, failure_rate=1):
        code, body, err = portalctl(live, estate.admin_a, *create_args(
            estate, "--wait", "--timeout", 60))
    assert code == 6, err
    assert body["status"] == "error" and "simulated failure" in body["status_message"]


def test_unreachable_exits_7(estate):
    url = f"http://127.0.0.1:{free_port()}"
    code, body, err = portalctl(url, estate.admin_a, "--retries", 0, "vm", "list")
    assert code == 7 and "unreachable" in err


def test_help_documents_every_exit_code():
    result = subprocess.run([PORTALCTL, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for code, meaning in EXIT_CODES.items():
        assert f"{code}  {meaning}" in result.stdout
    sub = subprocess.run([PORTALCTL, "cluster", "scale", "--help"], capture_output=True,
                         text=True)
    assert sub.returncode == 0 and "--workers" in sub.stdout and "--wait" in sub.stdout


def test_cluster_create_scale_kubeconfig_delete_with_wait(live, estate, agent, tmp_path):
    code, cluster, err = portalctl(
        live, estate.admin_a, "cluster", "create", "--name", "ci-k8s", "--tenant",
        estate.tenant_a.id, "--group", estate.group.id, "--version", "1.31.2",
        "--control-planes", 1, "--control-plane-flavor", estate.flavor.id, "--workers", 1,
        "--worker-flavor", estate.flavor.id, "--anti-affinity", "none", "--wait",
        "--timeout", 60)
    assert code == 0, err
    assert cluster["status"] == "active" and len(cluster["nodes"]) == 2
    cid = cluster["id"]

    code, scaled, err = portalctl(live, estate.admin_a, "cluster", "scale", cid, "--workers", 2,
                                  "--wait", "--timeout", 60)
    assert code == 0, err
    workers = [n for n in scaled["nodes"] if n["role"] == "worker"]
    assert len(workers) == 2 and {n["status"] for n in workers} == {"active"}

    target = tmp_path / "kubeconfig.yaml"
    code, _, err = portalctl(live, estate.admin_a, "cluster", "kubeconfig", cid, "-o", target)
    assert code == 0, err
    assert "kind: Config" in target.read_text() and target.stat().st_mode & 0o077 == 0
    result = subprocess.run([PORTALCTL, "cluster", "kubeconfig", str(cid)], text=True,
                            capture_output=True, env={**os.environ, "PORTAL_URL": live,
                                                      "PORTAL_TOKEN": estate.admin_a})
    assert result.returncode == 0 and result.stdout == target.read_text()
    code, _, err = portalctl(live, estate.maintainer, "cluster", "kubeconfig", cid)
    assert code in (3, 8)  # a maintainer never gets it

    code, deleted, err = portalctl(live, estate.admin_a, "cluster", "delete", cid, "--wait",
                                   "--timeout", 60)
    assert code == 0, err
    assert deleted["status"] == "deleted"


def test_cluster_create_from_a_file_with_flags_overriding(live, estate, tmp_path):
    body = tmp_path / "cluster.json"
    body.write_text(json.dumps({
        "name": "from-file", "tenant_id": estate.tenant_a.id, "group_id": estate.group.id,
        "version": "1.31.2", "control_planes": 1, "control_plane_flavor_id": estate.flavor.id}))
    code, cluster, err = portalctl(live, estate.admin_a, "cluster", "create", "--file", body,
                                   "--name", "from-flags")
    assert code == 0, err
    assert cluster["name"] == "from-flags" and cluster["status"] == "provisioning"
    body.write_text("[1, 2]")
    code, _, err = portalctl(live, estate.admin_a, "cluster", "create", "--file", body)
    assert code == 2 and "JSON object" in err
