"""wait_for/timeout on the VM, cluster and job reads (SPEC 8.6): answer when the status is
reached, at once on a final status, else at the timeout — holding no database connection
while waiting."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import K8sCluster
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import assert_problem, vm_body


def new_vm(api, estate) -> tuple[int, int]:
    """A provisioning VM whose create job agent a1 has claimed: (vm id, job id)."""
    vm_id = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]["id"]
    job = api.post("/provision-jobs/claim", estate.operator, {"agent": "a1"}).get_json()
    return vm_id, job["items"][0]["id"]


def later(app, action, delay: float = 0.6) -> threading.Thread:
    """Run ``action`` in its own app context after ``delay`` seconds."""
    def run() -> None:
        time.sleep(delay)
        with app.app_context():
            action()
            db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_vm_read_waits_until_the_agent_makes_it_active(app, api, estate):
    vm_id, job_id = new_vm(api, estate)
    thread = later(app, lambda: jobs.complete(job_id, "a1", True))
    started = time.monotonic()
    response = api.get(f"/vms/{vm_id}?wait_for=active&timeout=10", estate.admin_a)
    waited = time.monotonic() - started
    thread.join()
    assert response.status_code == 200
    assert response.get_json()["status"] == "active"
    assert response.headers["Wait-Result"] == "reached"
    assert 0.5 <= waited < 5


def test_the_timeout_answers_the_current_representation(api, estate):
    vm_id, _ = new_vm(api, estate)
    started = time.monotonic()
    response = api.get(f"/vms/{vm_id}?wait_for=active&timeout=0.5", estate.admin_a)
    assert time.monotonic() - started >= 0.5
    assert response.status_code == 200
    assert response.get_json()["status"] == "provisioning"
    assert response.headers["Wait-Result"] == "timeout"


def test_a_final_status_ends_the_wait_at_once(app, api, estate):
    vm_id, job_id = new_vm(api, estate)
    jobs.complete(job_id, "a1", False, "disk on fire")
    db.session.commit()
    started = time.monotonic()
    response = api.get(f"/vms/{vm_id}?wait_for=active&timeout=10", estate.admin_a)
    assert time.monotonic() - started < 1
    assert response.get_json()["status"] == "error"
    assert response.headers["Wait-Result"] == "final"


def test_a_failure_while_waiting_ends_the_wait(app, api, estate):
    vm_id, job_id = new_vm(api, estate)
    thread = later(app, lambda: jobs.complete(job_id, "a1", False, "no"))
    response = api.get(f"/vms/{vm_id}?wait_for=active&timeout=10", estate.admin_a)
    thread.join()
    assert response.get_json()["status"] == "error"
    assert response.headers["Wait-Result"] == "final"


def test_without_wait_for_the_read_answers_at_once(api, estate):
    vm_id, _ = new_vm(api, estate)
    response = api.get(f"/vms/{vm_id}", estate.admin_a)
    assert response.status_code == 200 and "Wait-Result" not in response.headers


def test_a_job_read_waits_for_the_job_to_succeed(app, api, estate):
    _, job_id = new_vm(api, estate)
    thread = later(app, lambda: jobs.complete(job_id, "a1", True))
    response = api.get(f"/provision-jobs/{job_id}?wait_for=succeeded&timeout=10",
                       estate.operator)
    thread.join()
    assert response.get_json()["status"] == "succeeded"
    assert response.headers["Wait-Result"] == "reached"


def test_a_cluster_read_waits_for_active(app, api, estate):
    cluster = f.cluster(estate.tenant_a, estate.group, status="provisioning")
    db.session.commit()
    cluster_id = cluster.id

    def activate() -> None:
        db.session.execute(update(K8sCluster).where(K8sCluster.id == cluster_id)
                           .values(status="active"))
        db.session.commit()

    thread = later(app, activate)
    response = api.get(f"/clusters/{cluster_id}?wait_for=active&timeout=10", estate.admin_a)
    thread.join()
    assert response.get_json()["status"] == "active"
    assert response.headers["Wait-Result"] == "reached"


def test_another_tenants_object_is_not_found_without_waiting(api, estate):
    vm_id, _ = new_vm(api, estate)
    started = time.monotonic()
    response = api.get(f"/vms/{vm_id}?wait_for=active&timeout=5", estate.admin_b)
    assert_problem(response, 404, "not_found")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("query, field", [
    ("wait_for=running", "query.wait_for"),
    ("wait_for=active&timeout=21", "query.timeout"),
    ("wait_for=active&timeout=-1", "query.timeout"),
    ("wait_for=active&timeout=soon", "query.timeout"),
    ("wait_for=active&timeout=nan", "query.timeout"),
])
def test_bad_wait_parameters_are_refused(api, estate, query, field):
    vm_id, _ = new_vm(api, estate)
    response = api.get(f"/vms/{vm_id}?{query}", estate.admin_a)
    body = assert_problem(response, 422, "validation_error")
    assert field in body["errors"]


def test_waiting_holds_no_database_connection(pg_app, pg_api, pg_estate):
    vm_id, job_id = new_vm(pg_api, pg_estate)
    db.session.remove()
    idle = db.engine.pool.checkedout()  # what the fixtures hold, if anything
    checked_out: list[int] = []

    def look_then_complete() -> None:
        checked_out.append(db.engine.pool.checkedout())
        jobs.complete(job_id, "a1", True)

    thread = later(pg_app, look_then_complete, delay=0.8)
    response = pg_api.get(f"/vms/{vm_id}?wait_for=active&timeout=10", pg_estate.admin_a)
    thread.join()
    assert response.headers["Wait-Result"] == "reached"
    assert checked_out == [idle]
