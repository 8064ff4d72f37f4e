"""A cluster's kubeconfig (SPEC 8.6): returned by the agent with the control plane, stored
encrypted, downloaded by operators and the tenant's admins only — from the API and the
cluster page — and every download audited."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select

from portal.auth import tokens
from portal.clusters import kubeconfig as kubeconfigs
from portal.extensions import db
from portal.models import (
    AuditEvent,
    ClusterKubeconfig,
    K8sCluster,
    ProvisionJob,
    VirtualMachine,
)
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from tests.conftest import log_in
from tests.factories import PASSWORD

LARGE = "x" * (kubeconfigs.MAX_BYTES + 1)


def cluster_body(estate, **kw) -> dict:
    return {"name": "k1", "tenant_id": estate.tenant_a.id, "group_id": estate.group.id,
            "version": "1.31.2", "control_planes": 1,
            "control_plane_flavor_id": estate.flavor.id, "workers": 1,
            "worker_flavor_id": estate.flavor.id, **kw}


@pytest.fixture
def cluster_id(api, estate) -> int:
    response = api.post("/clusters", estate.admin_a, cluster_body(estate))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def build(app) -> None:
    """The in-process agent with the simulate driver builds every queued node."""
    agent = Agent(DatabaseQueue(app), SimulateDriver(delay=0), name="t")
    while agent.run_once():
        pass
    db.session.rollback()


def stored() -> ClusterKubeconfig | None:
    return db.session.scalar(select(ClusterKubeconfig))


def downloads() -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "download").order_by(AuditEvent.id)))


def test_simulate_agent_returns_a_valid_kubeconfig_stored_encrypted(app, api, estate,
                                                                   cluster_id):
    build(app)
    row = stored()
    assert row is not None and row.cluster_id == cluster_id
    assert b"apiVersion" not in row.ciphertext and b"token" not in row.ciphertext
    text = kubeconfigs._fernet().decrypt(row.ciphertext).decode()
    config = yaml.safe_load(text)
    assert config["apiVersion"] == "v1" and config["kind"] == "Config"
    assert config["clusters"][0]["cluster"]["server"].startswith("https://")
    assert config["users"][0]["user"]["token"].startswith("simulated-")
    assert config["contexts"][0]["context"]["cluster"] == config["clusters"][0]["name"]
    assert config["current-context"] == config["contexts"][0]["name"]
    assert config["users"][0]["user"]["token"] not in row.ciphertext.decode()


@pytest.mark.parametrize("who", ["operator", "admin_a"])
def test_operators_and_the_tenants_admins_download_it_audited(app, api, estate, cluster_id,
                                                              who):
    build(app)
    response = api.get(f"/clusters/{cluster_id}/kubeconfig", getattr(estate, who))
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.headers["Content-Disposition"] == 'attachment; filename="k1-kubeconfig.yaml"'
    assert response.headers["Cache-Control"] == "no-store"
    assert yaml.safe_load(response.get_data(as_text=True))["kind"] == "Config"
    [event] = downloads()
    assert event.object_type == "k8s_cluster" and event.object_id == cluster_id
    assert event.username != "system"
    api.get(f"/clusters/{cluster_id}/kubeconfig", getattr(estate, who))
    assert len(downloads()) == 2  # every download


def test_another_tenants_admin_gets_404_and_a_maintainer_403(app, api, estate, cluster_id):
    build(app)
    assigned = api.post("/assignments", estate.operator, {
        "resource_type": "k8s_cluster", "resource_id": cluster_id,
        "maintainer_id": estate.maintainer_row.id})
    assert assigned.status_code == 201, assigned.get_json()
    assert api.get(f"/clusters/{cluster_id}", estate.maintainer).status_code == 200
    forbidden = api.get(f"/clusters/{cluster_id}/kubeconfig", estate.maintainer)
    assert forbidden.status_code == 403 and forbidden.get_json()["code"] == "forbidden"
    assert api.get(f"/clusters/{cluster_id}/kubeconfig", estate.admin_b).status_code == 404
    assert api.get(f"/clusters/{cluster_id}/kubeconfig", estate.nobody).status_code in (403, 404)
    assert downloads() == []


def test_404_before_the_agent_returned_one(app, api, estate, cluster_id):
    response = api.get(f"/clusters/{cluster_id}/kubeconfig", estate.admin_a)
    assert response.status_code == 404
    assert "no kubeconfig yet" in response.get_json()["detail"]
    assert downloads() == []


def test_cluster_page_offers_the_download_to_its_admin_only(app, api, estate, cluster_id):
    client = app.test_client()
    page_url = f"/clusters/{cluster_id}"
    log_in(client, _username(estate, "admin_a"), PASSWORD)
    assert "Download kubeconfig" not in client.get(page_url).get_data(as_text=True)
    assert client.get(page_url + "/kubeconfig").status_code == 404
    build(app)
    assert "Download kubeconfig" in client.get(page_url).get_data(as_text=True)
    response = client.get(page_url + "/kubeconfig")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    assert "kind: Config" in response.get_data(as_text=True)
    assert len(downloads()) == 1

    other = app.test_client()
    log_in(other, _username(estate, "admin_b"), PASSWORD)
    assert other.get(page_url + "/kubeconfig").status_code == 404
    assert len(downloads()) == 1


def _username(estate, who: str) -> str:
    """The user behind one of the estate's tokens."""
    return tokens.live_token(getattr(estate, who)).user.username


def test_kubeconfig_only_from_a_successful_control_plane_create(app, estate, api, cluster_id):
    claimed = jobs.claim("a", limit=10)
    by_role = {db.session.get(VirtualMachine, job.vm_id).role: job for job in claimed}
    jobs.complete(by_role["worker"].id, "a", True, "ok", kubeconfig="apiVersion: v1\n")
    jobs.complete(by_role["control-plane"].id, "a", False, "broke",
                  kubeconfig="apiVersion: v1\n")
    assert stored() is None


def test_too_large_a_kubeconfig_is_refused_and_changes_nothing(app, estate, api, cluster_id):
    [job, *_] = jobs.claim("a", limit=10)
    with pytest.raises(jobs.JobError, match="at most 65536"):
        jobs.complete(job.id, "a", True, "ok", kubeconfig=LARGE)
    db.session.rollback()
    assert db.session.get(ProvisionJob, job.id).status == "claimed"
    assert db.session.get(VirtualMachine, job.vm_id).status == "provisioning"
    assert stored() is None
    response = api.post(f"/provision-jobs/{job.id}/complete", estate.operator,
                        {"agent": "a", "succeeded": True, "kubeconfig": LARGE})
    assert response.status_code == 422
    assert "kubeconfig" in str(response.get_json()["errors"])
    assert db.session.get(ProvisionJob, job.id).status == "claimed"


def test_separate_encryption_key_outlives_a_new_secret_key(app, estate, api, cluster_id,
                                                           monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_ENCRYPTION_KEY", "kubeconfig-key-1")
    build(app)
    monkeypatch.setitem(app.config, "SECRET_KEY", "rotated-session-key")
    assert api.get(f"/clusters/{cluster_id}/kubeconfig", estate.admin_a).status_code == 200
    monkeypatch.setitem(app.config, "PORTAL_ENCRYPTION_KEY", "another-key")
    cluster = db.session.get(K8sCluster, cluster_id)
    with pytest.raises(kubeconfigs.KubeconfigError, match="PORTAL_ENCRYPTION_KEY"):
        kubeconfigs.download(cluster, None)


def test_an_assigned_maintainer_sees_the_cluster_page_without_the_download(app, api, estate,
                                                                          cluster_id):
    build(app)
    assigned = api.post("/assignments", estate.operator, {
        "resource_type": "k8s_cluster", "resource_id": cluster_id,
        "maintainer_id": estate.maintainer_row.id})
    assert assigned.status_code == 201
    client = app.test_client()
    log_in(client, _username(estate, "maintainer"), PASSWORD)
    page = client.get(f"/clusters/{cluster_id}")
    assert page.status_code == 200 and "Download kubeconfig" not in page.get_data(as_text=True)
    assert client.get(f"/clusters/{cluster_id}/kubeconfig").status_code == 403
    assert downloads() == []
