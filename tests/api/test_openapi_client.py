"""The OpenAPI document is usable by a client generator (issue 15): openapi-python-client,
run offline on the document a live server publishes, gives a client that creates a VM —
with an Idempotency-Key — and waits on it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.api.conftest import build_estate
from tests.api.live import gunicorn

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))


@pytest.fixture(scope="module")
def live(postgresql_app):
    with gunicorn(postgresql_app.config["SQLALCHEMY_DATABASE_URI"], workers=1,
                  threads=2) as base:
        yield base


@pytest.fixture
def client_package(live, tmp_path, monkeypatch):
    """The client generated from the live server's document, importable as a package."""
    document = tmp_path / "openapi.json"
    with urllib.request.urlopen(live + "/api/v1/openapi.json", timeout=30) as response:
        document.write_bytes(response.read())
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: nothing beyond the generator
    result = subprocess.run(
        [GENERATOR, "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(tmp_path / "portal_client"), "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("portal_client")
    for name in [m for m in sys.modules if m.split(".")[0] == "portal_client"]:
        del sys.modules[name]


def test_a_generated_client_creates_a_vm_and_waits_on_it(pg_app, live, client_package):
    estate = build_estate()
    body = {"name": "generated", "tenant_id": estate.tenant_a.id,
            "group_id": estate.group.id, "spec_id": estate.flavor.id}
    client_module = importlib.import_module("portal_client.client")
    create_vms = importlib.import_module("portal_client.api.vms.create_vms")
    get_vm = importlib.import_module("portal_client.api.vms.get_vm")
    models = importlib.import_module("portal_client.models")
    with client_module.AuthenticatedClient(base_url=live, token=estate.admin_a) as client:
        create_and_wait(client, create_vms, get_vm, models, body, estate)


def create_and_wait(client, create_vms, get_vm, models, body, estate) -> None:
    key = str(uuid.uuid4())

    created = create_vms.sync_detailed(client=client, body=models.VmCreate.from_dict(body),
                                       idempotency_key=key)
    assert created.status_code == 201, created.content
    page = created.parsed
    assert isinstance(page, models.VmPage) and page.total == 1
    vm = page.items[0]
    assert vm.name == "generated" and vm.status == "provisioning"
    assert vm.baremetal_id in {server.id for server in estate.servers}

    again = create_vms.sync_detailed(client=client, body=models.VmCreate.from_dict(body),
                                     idempotency_key=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.items[0].id == vm.id

    read = get_vm.sync_detailed(vm.id, client=client, wait_for=models.GetVmWaitFor.ACTIVE,
                                timeout=0.3)
    assert read.status_code == 200
    assert read.parsed.status == "provisioning"
    assert read.headers["Wait-Result"] == "timeout"
