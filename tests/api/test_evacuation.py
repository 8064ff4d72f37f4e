"""POST /baremetals/{id}/evacuation, /racks/{id}/evacuation and return-to-service."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Baremetal, ProvisionJob, VirtualMachine
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import assert_problem
from tests.provisioning.invariants import lifecycle_violations


def state():
    db.session.expire_all()
    return (sorted(db.session.execute(select(Baremetal.id, Baremetal.status,
                                             Baremetal.available_cpu)).all()),
            sorted(db.session.execute(select(VirtualMachine.id, VirtualMachine.status,
                                             VirtualMachine.baremetal_id)).all()),
            db.session.scalar(select(func.count(ProvisionJob.id))))


@pytest.fixture
def placed(estate):
    vm = f.vm(estate.tenant_a, estate.servers[0], estate.flavor)
    db.session.commit()
    return vm


def test_dry_run_then_drain_then_return(api, estate, placed):
    server, other = estate.servers
    before = state()
    dry = api.post(f"/baremetals/{server.id}/evacuation", estate.operator, {"dry_run": True})
    assert dry.status_code == 200, dry.get_json()
    expected = {"moves": [{"vm_id": placed.id, "from_baremetal_id": server.id,
                           "to_baremetal_id": other.id}], "stuck": []}
    assert dry.get_json() == expected
    assert state() == before

    done = api.post(f"/baremetals/{server.id}/evacuation", estate.operator, {"dry_run": False})
    assert done.status_code == 200 and done.get_json() == expected
    assert db.session.get(Baremetal, server.id).status == "maintenance"
    assert lifecycle_violations() == []

    busy = api.post(f"/baremetals/{server.id}/return-to-service", estate.operator)
    assert "still migrating off" in assert_problem(busy, 409, "conflict")["detail"]
    for job in jobs.claim("agent", 5):
        jobs.complete(job.id, "agent", True, "moved")
    back = api.post(f"/baremetals/{server.id}/return-to-service", estate.operator)
    assert back.status_code == 200 and back.get_json() == {"baremetal_ids": [server.id]}
    assert lifecycle_violations() == []


def test_rack_drain_with_nowhere_to_go_reports_stuck(api, estate, placed):
    rack_id = estate.servers[0].rack_id
    response = api.post(f"/racks/{rack_id}/evacuation", estate.operator, {"dry_run": True})
    assert response.status_code == 200
    assert response.get_json() == {"moves": [], "stuck": [
        {"vm_id": placed.id, "reason": "no other active server in its group"}]}


@pytest.mark.parametrize("who", ["maintainer", "admin_a", "nobody"])
def test_only_operators_drain(api, estate, placed, who):
    before = state()
    server = estate.servers[0]
    for path in (f"/baremetals/{server.id}/evacuation", f"/racks/{server.rack_id}/evacuation"):
        response = api.post(path, getattr(estate, who), {"dry_run": False})
        assert_problem(response, 403, "forbidden")
    response = api.post(f"/baremetals/{server.id}/return-to-service", getattr(estate, who))
    assert_problem(response, 403, "forbidden")
    assert state() == before


@pytest.mark.parametrize("body", [{}, {"dry_run": "yes"}, {"dry_run": True, "force": True}])
def test_bad_bodies_change_nothing(api, estate, placed, body):
    before = state()
    response = api.post(f"/baremetals/{estate.servers[0].id}/evacuation", estate.operator, body)
    assert_problem(response, 422, "validation_error")
    assert state() == before


def test_unknown_ids_are_404(api, estate):
    for path in ("/baremetals/999999/evacuation", "/racks/999999/evacuation"):
        assert_problem(api.post(path, estate.operator, {"dry_run": True}), 404, "not_found")
    for path in ("/baremetals/999999/return-to-service", "/racks/999999/return-to-service"):
        assert_problem(api.post(path, estate.operator), 404, "not_found")


def test_return_of_a_server_in_service_is_a_conflict(api, estate):
    response = api.post(f"/baremetals/{estate.servers[0].id}/return-to-service", estate.operator)
    assert "no server here is in maintenance" in assert_problem(response, 409, "conflict")["detail"]


def test_documented_in_openapi(api):
    paths = api.get("/openapi.json").get_json()["paths"]
    for path in ("/baremetals/{baremetal_id}/evacuation", "/racks/{rack_id}/evacuation",
                 "/baremetals/{baremetal_id}/return-to-service",
                 "/racks/{rack_id}/return-to-service"):
        assert "post" in paths["/api/v1" + path]
