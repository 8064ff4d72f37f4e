"""Several VMs requested together spread over servers (SPEC 8.2): through the service, the
API (create and preview) and the wizard; hard refusals change nothing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import Baremetal, VirtualMachine
from portal.scheduler.explain import MEMBER
from portal.scheduler.reservation import PlacementRefused
from portal.vms import service
from tests import factories as f
from tests.api.conftest import Api, assert_problem, token_for
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def estate(app):
    grp = f.group(name="north")
    rack = f.rack(name="r-a")
    servers = [
        f.server(rack=rack, group=grp, name=f"s-{i}", rack_unit=2 * i + 1, cpu=32, memory=128,
                 storage=1000)
        for i in range(4)
    ]
    tenant = f.tenant(name="acme")
    f.quota(tenant, grp)
    flavor = f.flavor(name="m.4", cpu=4, memory=8, storage=50)
    admin = f.user("admin", tenants=("acme",))
    db.session.commit()
    return SimpleNamespace(grp=grp, servers=servers, tenant=tenant, flavor=flavor, admin=admin)


def vm_request(e, **kw):
    args = dict(tenant_id=e.tenant.id, group_id=e.grp.id, spec_id=e.flavor.id, name="web",
                count=3)
    args.update(kw)
    return service.build_request(e.admin, **args)


def vm_count():
    return db.session.scalar(select(func.count(VirtualMachine.id)))


def free_cpu():
    return dict(db.session.execute(select(Baremetal.id, Baremetal.available_cpu)).all())


def test_vms_requested_together_land_on_distinct_servers_by_default(estate):
    vms = service.create_vms(vm_request(estate), estate.admin)
    assert len({vm.baremetal_id for vm in vms}) == 3
    assert counter_drift() == []


def test_pack_densely_keeps_them_together(estate):
    vms = service.create_vms(vm_request(estate, anti_affinity="none"), estate.admin)
    assert len({vm.baremetal_id for vm in vms}) == 1


def test_hard_with_more_vms_than_servers_is_refused_and_changes_nothing(estate):
    before = free_cpu()
    with pytest.raises(PlacementRefused) as refused:
        service.create_vms(vm_request(estate, count=5, anti_affinity="hard"), estate.admin)
    assert refused.value.refusal.code == "insufficient_capacity"
    assert refused.value.refusal.details["reasons"] == {MEMBER: 4}
    assert "4 hosts: already holds a member of this set" in refused.value.refusal.message
    assert vm_count() == 0 and free_cpu() == before


def test_hard_within_the_servers_places_one_per_server(estate):
    vms = service.create_vms(vm_request(estate, count=4, anti_affinity="hard"), estate.admin)
    assert len({vm.baremetal_id for vm in vms}) == 4


def test_an_unknown_setting_is_a_field_error(estate):
    with pytest.raises(service.RequestInvalid) as invalid:
        vm_request(estate, anti_affinity="strict")
    assert "soft (spread when room allows)" in invalid.value.errors["anti_affinity"]


def test_the_preview_reports_the_spread(estate):
    assert service.preview_vms(vm_request(estate)).result.spread == "3 VMs on 3 servers"
    packed = service.preview_vms(vm_request(estate, anti_affinity="none"))
    assert packed.result.spread == "3 VMs on 1 server, at most 3 on one"


# --- API ---------------------------------------------------------------------------------


@pytest.fixture
def api(app, estate):
    return SimpleNamespace(client=Api(app.test_client()), token=token_for(estate.admin))


def body(e, **kw):
    return {"name": "web", "tenant_id": e.tenant.id, "group_id": e.grp.id,
            "spec_id": e.flavor.id, "count": 3, **kw}


def test_api_spreads_by_default_and_packs_on_request(api, estate):
    spread = api.client.post("/vms", api.token, body(estate))
    assert spread.status_code == 201, spread.get_json()
    assert len({vm["baremetal_id"] for vm in spread.get_json()["items"]}) == 3
    packed = api.client.post("/vms", api.token, body(estate, name="db", anti_affinity="none"))
    assert packed.status_code == 201
    assert len({vm["baremetal_id"] for vm in packed.get_json()["items"]}) == 1


def test_api_hard_refusal_counts_servers_and_creates_nothing(api, estate):
    response = api.client.post("/vms", api.token, body(estate, count=5, anti_affinity="hard"))
    problem = assert_problem(response, 409, "insufficient_capacity")
    assert problem["details"]["reasons"] == {MEMBER: 4}
    assert vm_count() == 0


def test_api_rejects_an_unknown_setting(api, estate):
    response = api.client.post("/vms", api.token, body(estate, anti_affinity="strict"))
    problem = assert_problem(response, 422, "validation_error")
    assert "anti_affinity" in str(problem)
    assert vm_count() == 0


def test_placement_preview_reports_setting_and_spread(api, estate):
    response = api.client.post("/placements/preview", api.token,
                               {"kind": "vm", **body(estate, anti_affinity="hard")})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["ok"] and data["anti_affinity"] == "hard"
    assert data["spread"] == "3 VMs on 3 servers"
    assert len({n["baremetal_id"] for n in data["nodes"]}) == 3
    assert vm_count() == 0


# --- wizard ------------------------------------------------------------------------------


@pytest.fixture
def admin(app, estate):
    client = app.test_client()
    log_in(client, "admin", f.PASSWORD)
    return client


def form(e, **kw):
    return {"tenant_id": e.tenant.id, "group_id": e.grp.id, "spec_id": e.flavor.id,
            "name": "web", "count": 3, "strategy": "shape_fit", "action": "create", **kw}


def post(client, url, data, **kw):
    token = csrf_token_from(client.get("/vms/new").get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token}, **kw)


def test_wizard_offers_the_three_settings_soft_first(admin, estate):
    html = admin.get("/vms/new").get_data(as_text=True)
    soft = html.index("Spread across servers (soft)")
    assert soft < html.index("Strictly one per server (hard)") < html.index("Pack densely (none)")
    assert 'name="anti_affinity"' in html


def test_wizard_preview_shows_the_spread_of_the_chosen_setting(admin, estate):
    html = post(admin, "/vms/preview", form(estate), headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Spread:</strong> 3 VMs on 3 servers" in html
    packed = post(admin, "/vms/preview", form(estate, anti_affinity="none"),
                  headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Spread:</strong> 3 VMs on 1 server, at most 3 on one" in packed
    assert vm_count() == 0


def test_wizard_without_javascript_creates_with_hard_and_refuses_what_cannot_be_met(
    admin, estate
):
    refused = post(admin, "/vms/new", form(estate, count=5, anti_affinity="hard"))
    html = refused.get_data(as_text=True)
    assert "already holds a member of this set" in html
    assert vm_count() == 0
    created = post(admin, "/vms/new", form(estate, count=4, anti_affinity="hard"))
    assert created.status_code in (302, 303)
    ids = db.session.scalars(select(VirtualMachine.baremetal_id)).all()
    assert len(ids) == 4 and len(set(ids)) == 4


def test_wizard_shows_an_unknown_setting_on_its_field_and_creates_nothing(admin, estate):
    html = post(admin, "/vms/new", form(estate, anti_affinity="strict")).get_data(as_text=True)
    assert "Choose how the VMs share servers" in html
    assert vm_count() == 0
