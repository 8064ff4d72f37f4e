"""The CI examples in docs/ci are run, not just shown: their script lines (all but the
install) run with bash against a live server, with an agent building the VM, the way the
CI runner would run them — and the VM is created, found active, and deleted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from portal.extensions import db
from portal.models import VirtualMachine
from tests.api.conftest import build_estate
from tests.api.live import ROOT, gunicorn
from tests.api.test_portalctl import background_agent

DOCS = ROOT / "docs" / "ci"
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


@pytest.fixture(scope="module")
def live(postgresql_app):
    with gunicorn(postgresql_app.config["SQLALCHEMY_DATABASE_URI"], workers=2,
                  threads=2) as base:
        yield base


@pytest.fixture
def estate(pg_app):
    return build_estate()


def settings(live, estate) -> dict[str, str]:
    """What a project's CI settings hold: the portal, a token, where the VM goes."""
    return {"PORTAL_URL": live, "PORTAL_TOKEN": estate.admin_a,
            "PORTAL_TENANT_ID": str(estate.tenant_a.id),
            "PORTAL_GROUP_ID": str(estate.group.id),
            "PORTAL_FLAVOR_ID": str(estate.flavor.id)}


def runner_env(extra: dict[str, str]) -> dict[str, str]:
    # portalctl and python3 as the runner has them after the (skipped) install step.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8", **extra}


def is_install(line: str) -> bool:
    return "pip install" in line


def run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*BASH, "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def the_vm(name: str) -> VirtualMachine:
    db.session.rollback()
    return db.session.scalars(db.select(VirtualMachine).where(VirtualMachine.name == name)).one()


def test_gitlab_ci_example_creates_uses_and_deletes_a_vm(live, estate, tmp_path):
    job = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())["vm-smoke-test"]
    script = [line for line in job["script"] if not is_install(line)]
    assert len(script) < len(job["script"])  # the install line was there, and only it skipped
    env = runner_env({**settings(live, estate), "CI_PIPELINE_ID": "77", "CI_JOB_ID": "501"})
    with background_agent(live, estate.operator):
        # GitLab runs the script lines in one shell, stopping at the first failure, and the
        # after_script in another shell, whatever happened.
        main = run("\n".join(script), tmp_path, env)
        after = run("\n".join(job["after_script"]), tmp_path, env)
    assert main.returncode == 0, main.stderr
    assert "ci-77-501 is active on server" in main.stdout
    assert after.returncode == 0, after.stderr
    vm = the_vm("ci-77-501")
    assert vm.status == "deleted"


EXPRESSION = re.compile(r"\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}")


def test_github_actions_example_creates_uses_and_deletes_a_vm(live, estate, tmp_path):
    workflow = yaml.safe_load((DOCS / "github-actions.yml").read_text())
    job = workflow["jobs"]["vm-smoke-test"]
    values = settings(live, estate)
    job_env = {name: EXPRESSION.sub(lambda m: values[m.group(1)], value)
               for name, value in job["env"].items()}
    github_env = tmp_path / "github.env"
    github_env.touch()
    env = runner_env({**job_env, "GITHUB_RUN_ID": "9001", "GITHUB_RUN_ATTEMPT": "1",
                      "GITHUB_ENV": str(github_env)})
    ran, failed = [], False
    with background_agent(live, estate.operator):
        for step in job["steps"]:
            if "uses" in step or is_install(step["run"]):
                continue
            if failed and step.get("if") != "always()":
                continue
            result = run(step["run"], tmp_path, env)
            ran.append((step["name"], result.returncode, result.stderr))
            failed = failed or result.returncode != 0
            # What a step writes to $GITHUB_ENV is in the environment of the next ones.
            for line in github_env.read_text().splitlines():
                name, _, value = line.partition("=")
                env[name] = value
    assert [name for name, *_ in ran] == ["Create a VM and wait until it is active", "Use it",
                                          "Delete the VM"]
    assert all(code == 0 for _, code, _ in ran), ran
    vm = the_vm("ci-9001-1")
    assert env["VM_ID"] == str(vm.id)
    assert vm.status == "deleted"
    assert '"status": "active"' in (tmp_path / "vm-state.json").read_text()
