"""The files that run agents for real (deploy/systemd/): the unit, and example settings
whose every PORTAL_* variable is one the agent (or the example wrapper) reads, parsed into
the driver it describes; and the compose service of the README, on an image that can
carry the libvirt binding."""

from __future__ import annotations

import re
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from portal.provisioning.cli import build_driver, run
from portal.provisioning.exec_driver import ExecDriver
from portal.provisioning.libvirt_driver import LibvirtDriver

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"


def settings(name: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (SYSTEMD / name).read_text().splitlines()
             if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def agent_variables() -> set[str]:
    names = set()
    for option in run.params:
        envvar = getattr(option, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def test_the_unit_runs_one_agent_per_instance_with_its_own_settings():
    unit = ConfigParser(interpolation=None, strict=False)
    unit.read(SYSTEMD / "portal-agent@.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("flask --app wsgi agent run")
    assert service["EnvironmentFile"] == "/etc/portal/agent-%i.env"
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("example", ["agent-libvirt.env.example", "agent-exec.env.example"])
def test_every_setting_of_the_examples_is_read_by_someone(example):
    wrapper = (ROOT / "docs" / "examples" / "ansible" / "portal-ansible").read_text()
    for name in settings(example):
        if name.startswith("ANSIBLE_") or name == "SECRET_KEY":  # Ansible's; the app's
            continue
        assert name in agent_variables() or re.search(rf"\b{name}\b", wrapper), name


def parsed(monkeypatch, example):
    for name, value in settings(example).items():
        monkeypatch.setenv(name, value)
    context = run.make_context("run", [])
    return context.params


def test_the_libvirt_example_builds_the_driver_it_describes(monkeypatch):
    params = parsed(monkeypatch, "agent-libvirt.env.example")
    assert params["driver"] == "libvirt" and params["dcs"] == ("tpe1",)
    driver = build_driver("libvirt", params)
    assert isinstance(driver, LibvirtDriver)
    assert (driver.pool, driver.network, driver.image, driver.shared_storage,
            driver.call_timeout, driver.timeout) == (
        "vms", "vlan-210", "debian-12-genericcloud-amd64.qcow2", False, 60.0, 900.0)
    assert driver.server_uri("kvm-07", None) == (
        "qemu+ssh://root@kvm-07.mgmt.example.com/system?keyfile=/etc/portal/ssh/id_ed25519")


def test_the_exec_example_builds_the_driver_it_describes(monkeypatch, tmp_path):
    params = parsed(monkeypatch, "agent-exec.env.example")
    assert params["groups"] == ("tw-north-general", "tw-north-gpu")
    params["command"] = "true"  # /etc/portal/portal-ansible is not installed here
    driver = build_driver("exec", params)
    assert isinstance(driver, ExecDriver)
    assert (driver.timeout, driver.retry_delay, driver.max_attempts) == (1800.0, 30, 40)


def test_every_example_gives_the_application_its_key():
    """The unit's file system is read-only: an agent cannot make itself a key file."""
    for example in ("agent-libvirt.env.example", "agent-exec.env.example"):
        assert settings(example)["SECRET_KEY"], example
    unit = (SYSTEMD / "portal-agent@.service").read_text()
    assert "ProtectSystem=strict" in unit


def test_the_readmes_compose_agent_takes_its_driver_from_its_settings_file():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Provisioning agents"):]
    snippet = section[section.index("```yaml") + len("```yaml"):]
    (service,) = yaml.safe_load(snippet[:snippet.index("```")])["services"].values()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert service["image"] == compose["services"]["agent"]["image"]
    # No --driver on the command line: it would override PORTAL_AGENT_DRIVER of the file.
    assert service["command"] == ["flask", "agent", "run"]
    assert service["env_file"] == ["/etc/portal/agent-tpe1.env"]
    assert service["read_only"] is True and service["healthcheck"] == {"disable": True}
    assert readme.count("### Provisioning agents") == 1
    # The image is built with the extras asked for, the libvirt binding among them.
    assert compose["services"]["agent"]["build"]["args"] == {
        "PORTAL_EXTRAS": "${PORTAL_EXTRAS:-deploy}"}
    assert 'PORTAL_EXTRAS="deploy libvirt" docker compose build' in section


def test_the_image_installs_the_extras_it_is_built_with():
    dockerfile = (ROOT / "Dockerfile").read_text()
    build, runtime = dockerfile.split("\nFROM ")[1:3]
    assert "ARG PORTAL_EXTRAS=deploy" in dockerfile.split("\nFROM ")[0]
    assert "ARG PORTAL_EXTRAS\n" in build and "ARG PORTAL_EXTRAS\n" in runtime
    assert 'os.environ["PORTAL_EXTRAS"].split()' in build
    libvirt = '*" libvirt "*)'
    assert libvirt in build and "libvirt-dev" in build.split(libvirt, 1)[1].split(";;")[0]
    assert libvirt in runtime and "libvirt0 openssh-client" in runtime.split(libvirt, 1)[1]
