"""The VM request journey through the pages: wizard, preview, create, follow, delete."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import AuditEvent, ProvisionJob, VirtualMachine
from portal.provisioning import jobs
from tests import factories as f
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def estate(app):
    rack_a, rack_b = f.rack(name="r-a"), f.rack(name="r-b")
    grp = f.group(name="north")
    small = f.server(
        rack=rack_a, group=grp, name="s-small", cpu=16, memory=64, storage=500, rack_unit=1
    )
    big = f.server(
        rack=rack_b, group=grp, name="s-big", cpu=64, memory=256, storage=2000, rack_unit=1
    )
    other_grp = f.group(name="south")
    f.server(group=other_grp, name="s-south", cpu=64, memory=256, storage=2000)
    no_quota_grp = f.group(name="forbidden")
    f.server(group=no_quota_grp, cpu=64, memory=256, storage=2000)
    mine, theirs = f.tenant(name="acme"), f.tenant(name="globex")
    f.quota(mine, grp, cpu_limit=40)
    f.quota(mine, other_grp)
    f.quota(theirs, grp)
    flavor = f.flavor(name="m.4", cpu=4, memory=8, storage=50)
    huge = f.flavor(name="xl.32", cpu=32, memory=64, storage=100)
    retired = f.flavor(name="old.2", cpu=2, memory=4, storage=20, is_active=False)
    their_vm = f.vm(theirs, big, flavor, name="their-vm")
    f.user("admin", tenants=("acme",))
    f.user("ops", operator=True)
    db.session.commit()
    return SimpleNamespace(**locals())


@pytest.fixture
def admin(app, estate):
    client = app.test_client()
    log_in(client, "admin", f.PASSWORD)
    return client


def form(estate, **overrides):
    data = {
        "tenant_id": estate.mine.id,
        "group_id": estate.grp.id,
        "spec_id": estate.flavor.id,
        "name": "web",
        "count": 1,
        "strategy": "best_fit",
        "action": "create",
    }
    data.update(overrides)
    return data


def post(client, url, data, **kw):
    token = csrf_token_from(client.get("/vms/new").get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token}, **kw)


def vm_count():
    return db.session.scalar(select(func.count(VirtualMachine.id)))


def test_wizard_offers_only_own_tenants_groups_with_quota_and_active_flavors(admin, estate):
    html = admin.get(f"/vms/new?tenant_id={estate.mine.id}").get_data(as_text=True)
    assert "acme" in html and "globex" not in html
    assert "north — left: 40 CPU" in html and "south — left: no limit CPU" in html
    assert "forbidden" not in html
    assert "m.4" in html and "old.2" not in html


def test_preview_shows_server_and_quota_impact(admin, estate):
    response = post(admin, "/vms/preview", form(estate, count=2), headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Fits: 2 VMs" in html
    assert "s-small" in html  # best fit: the fuller server
    assert "0 + 8 of 40 cores" in html
    assert vm_count() == 1  # a preview reserves nothing


def test_preview_explains_a_quota_refusal_with_numbers_and_a_suggestion(admin, estate):
    html = post(
        admin,
        "/vms/preview",
        form(estate, spec_id=estate.huge.id, count=2),
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Does not fit" in html and "64 cores" in html and "40 cores" in html
    assert "The same request fits in group south" in html
    assert "over by 24 cores" in html


def test_preview_explains_capacity_per_server(admin, estate):
    html = post(
        admin,
        "/vms/preview",
        form(estate, group_id=estate.other_grp.id, spec_id=estate.huge.id, count=3),
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Does not fit" in html and "not enough cpu" in html


def test_create_places_reserves_and_lands_on_the_vm_page(admin, estate):
    response = post(admin, "/vms/new", form(estate, name="資料庫-01"))
    assert response.status_code == 302
    vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == "資料庫-01"))
    assert response.headers["Location"] == f"/vms/{vm.id}"
    assert vm.status == "provisioning" and vm.baremetal.name == "s-small"
    assert (vm.cpu, vm.memory, vm.storage) == (4, 8, 50)
    assert (
        db.session.scalar(select(ProvisionJob.action).where(ProvisionJob.vm_id == vm.id))
        == "create"
    )
    event = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.object_type == "virtual_machine", AuditEvent.object_id == vm.id
        )
    )
    assert event.action == "place" and event.username == "admin"
    page = admin.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page  # follows provisioning live
    assert counter_drift() == []


def test_several_identical_vms_are_named_and_placed_together(admin, estate):
    response = post(admin, "/vms/new", form(estate, name="batch", count=3))
    assert response.status_code == 302
    names = db.session.scalars(
        select(VirtualMachine.name)
        .where(VirtualMachine.name.like("batch-%"))
        .order_by(VirtualMachine.name)
    ).all()
    assert names == ["batch-1", "batch-2", "batch-3"]


def test_status_fragment_stops_polling_when_settled(admin, estate):
    post(admin, "/vms/new", form(estate, name="live"))
    vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == "live"))
    (job,) = jobs.claim("t")
    jobs.complete(job.id, "t", True, "ready")
    fragment = admin.get(f"/vms/{vm.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and 'data-status="active"' in fragment
    assert "every 2s" not in fragment


@pytest.mark.parametrize(
    "overrides, field_message",
    [
        ({"spec_id": 999999}, "Choose a flavor."),
        ({"spec_id": "retired"}, "is retired"),
        ({"group_id": "no_quota_grp"}, "has no quota in this group"),
        ({"count": 0}, "1 to 50"),
        ({"count": 100000}, "1 to 50"),
        ({"count": "many"}, "Not a valid integer"),
        ({"tenant_id": "theirs"}, "Choose one of your tenants."),
        ({"tenant_id": 999999}, "Choose one of your tenants."),
        ({"name": ""}, "Give the VM a name."),
        ({"name": "x" * 64}, "at most 63 characters"),
        ({"name": "has space"}, "no spaces"),
        ({"name": "-leading"}, "starts with a letter or digit"),
        ({"name": "their-vm", "tenant_id": "theirs"}, "Choose one of your tenants."),
        ({"strategy": "random"}, "Not a valid choice"),
    ],
)
def test_bad_input_is_refused_clearly_and_reserves_nothing(admin, estate, overrides, field_message):
    resolved = {
        k: getattr(estate, v).id if isinstance(v, str) and hasattr(estate, v) else v
        for k, v in overrides.items()
    }
    before = vm_count()
    response = post(admin, "/vms/new", form(estate, **resolved))
    assert response.status_code == 200
    assert field_message in response.get_data(as_text=True)
    assert vm_count() == before
    assert db.session.scalar(select(func.count(ProvisionJob.id))) == 0
    assert counter_drift() == []


def test_duplicate_name_is_refused(admin, estate):
    post(admin, "/vms/new", form(estate, name="dup"))
    response = post(admin, "/vms/new", form(estate, name="dup"))
    assert "already has a VM named dup" in response.get_data(as_text=True)
    assert vm_count() == 2


def test_quota_refusal_on_create_changes_nothing(admin, estate):
    response = post(admin, "/vms/new", form(estate, spec_id=estate.huge.id, count=2))
    assert response.status_code == 200
    assert "Quota exceeded" in response.get_data(as_text=True)
    assert vm_count() == 1


def test_another_tenants_vm_is_not_found(admin, estate):
    vm_id = estate.their_vm.id
    assert admin.get(f"/vms/{vm_id}").status_code == 404
    assert admin.get(f"/vms/{vm_id}/delete").status_code == 404
    token = csrf_token_from(admin.get("/vms/new").get_data(as_text=True))
    assert admin.post(f"/vms/{vm_id}/delete", data={"csrf_token": token}).status_code == 404
    assert admin.post(f"/vms/{vm_id}/retry", data={"csrf_token": token}).status_code == 404
    assert db.session.get(VirtualMachine, vm_id).status == "active"


def test_delete_with_confirmation_then_agent_releases(admin, estate):
    post(admin, "/vms/new", form(estate, name="gone"))
    vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == "gone"))
    (job,) = jobs.claim("t")
    jobs.complete(job.id, "t", True)
    confirm = admin.get(f"/vms/{vm.id}/delete").get_data(as_text=True)
    assert "Delete VM <strong>gone</strong>" in confirm
    token = csrf_token_from(confirm)
    assert admin.post(f"/vms/{vm.id}/delete", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert vm.status == "deleting" and estate.small.available_cpu == 12
    (job,) = jobs.claim("t")
    jobs.complete(job.id, "t", True)
    db.session.expire_all()
    assert vm.status == "deleted" and estate.small.available_cpu == 16
    assert counter_drift() == []


def test_delete_while_the_agent_builds_waits_for_it_on_the_page(admin, estate):
    """Issue 10, as a user saw it: delete a VM whose create an agent is working on. The
    page says the delete follows the build and offers no retry while a job is live; the
    create's success queues the delete instead of making the VM active again."""
    post(admin, "/vms/new", form(estate, name="busy"))
    vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == "busy"))
    (create,) = jobs.claim("t")
    token = csrf_token_from(admin.get(f"/vms/{vm.id}/delete").get_data(as_text=True))
    assert admin.post(f"/vms/{vm.id}/delete", data={"csrf_token": token}).status_code == 302
    page = admin.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert "Deleting once the agent finishes building it" in page
    assert "Retry" not in page
    again = admin.post(f"/vms/{vm.id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "already deleting" in again.get_data(as_text=True)
    jobs.complete(create.id, "t", True, "built")
    db.session.expire_all()
    assert vm.status == "deleting"
    (delete,) = jobs.claim("t")
    jobs.complete(delete.id, "t", True)
    db.session.expire_all()
    assert vm.status == "deleted" and estate.small.available_cpu == 16
    assert counter_drift() == []


def test_retry_of_a_failed_vm(admin, estate):
    post(admin, "/vms/new", form(estate, name="flaky"))
    vm = db.session.scalar(select(VirtualMachine).where(VirtualMachine.name == "flaky"))
    (job,) = jobs.claim("t")
    jobs.complete(job.id, "t", False, "image not found")
    token = csrf_token_from(admin.get(f"/vms/{vm.id}").get_data(as_text=True))
    assert admin.post(f"/vms/{vm.id}/retry", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert vm.status == "provisioning" and vm.status_message == ""
    (job,) = jobs.claim("t")
    jobs.complete(job.id, "t", True)
    db.session.expire_all()
    assert vm.status == "active"
    assert counter_drift() == []


def test_maintainer_cannot_create(app, estate):
    f.maintainer(account="m1")
    f.user("maint", maintainer_account="m1")
    db.session.commit()
    client = app.test_client()
    log_in(client, "maint", f.PASSWORD)
    assert client.get("/vms/new").status_code == 403


def test_wizard_works_without_javascript(admin, estate):
    """The Preview button posts the whole page and shows the same preview."""
    html = post(admin, "/vms/new", form(estate, action="preview")).get_data(as_text=True)
    assert "<html" in html and "Fits: 1 VM" in html
    assert vm_count() == 1
