"""The drain pages: preview (dry run), evacuate, progress on the server and rack pages,
return to service — without JavaScript, CSRF-protected, operators only."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Baremetal, ProvisionJob, VirtualMachine
from portal.provisioning import jobs
from tests import factories as f
from tests.baremetals.pages import client_for, post, text
from tests.provisioning.invariants import lifecycle_violations


def build():
    rack, other_rack, group = f.rack(name="rack-A"), f.rack(), f.group()
    source = f.server(rack=rack, group=group, cpu=16, name="src-1")
    target = f.server(rack=other_rack, group=group, cpu=16, name="dst-1")
    tenant = f.tenant()
    f.quota(tenant, group)
    vm = f.vm(tenant, source, f.flavor(cpu=4), name="web-1")
    building = f.vm(tenant, source, f.flavor(cpu=2), name="web-2", status="provisioning")
    db.session.add(ProvisionJob(vm_id=building.id, action="create"))
    db.session.commit()
    return rack, source, target, vm


def job_count():
    return db.session.scalar(select(func.count(ProvisionJob.id)))


def test_drain_a_server_from_its_page(app, ops):
    rack, source, target, vm = build()
    page = text(ops.get(f"/servers/{source.id}"))
    assert f"/servers/{source.id}/drain" in page and "Return to service" in page
    preview = ops.get(f"/servers/{source.id}/drain")
    html = text(preview)
    assert preview.status_code == 200
    assert "web-1" in html and "dst-1" in html  # the move
    assert "is provisioning: drain again once it is active" in html  # the stuck VM
    assert 'name="csrf_token"' in html
    assert job_count() == 1 and db.session.get(Baremetal, source.id).status == "active"

    done = post(ops, f"/servers/{source.id}/drain", follow_redirects=True)
    html = text(done)
    assert "Draining: 1 VM migrating; 1 cannot move now." in html
    assert 'id="evacuation-progress"' in html and "migrating" in html
    assert 'hx-trigger="every 3s" hx-select="#evacuation"' in html  # follows itself
    db.session.expire_all()
    assert db.session.get(Baremetal, source.id).status == "maintenance"
    assert lifecycle_violations() == []

    refused = text(post(ops, f"/servers/{source.id}/return", follow_redirects=True))
    assert "still migrating off" in refused
    [claimed] = [job for job in jobs.claim("agent", 5) if job.action == "migrate"]
    jobs.complete(claimed.id, "agent", False, "no route to host")
    html = text(ops.get(f"/servers/{source.id}"))
    assert "failed" in html and "no route to host" in html
    assert 'hx-select="#evacuation"' not in html  # settled: no more polling
    assert "Back in service: src-1." in text(post(ops, f"/servers/{source.id}/return",
                                                   follow_redirects=True))
    assert lifecycle_violations() == []


def test_drain_a_rack_from_its_page(app, ops):
    rack, source, target, vm = build()
    assert f"/racks/{rack.id}/drain" in text(ops.get(f"/racks/{rack.id}"))
    html = text(ops.get(f"/racks/{rack.id}/drain"))
    assert "Evacuate rack rack-A" in html and "dst-1" in html
    html = text(post(ops, f"/racks/{rack.id}/drain", follow_redirects=True))
    assert "Draining: 1 VM migrating" in html and 'id="evacuation-progress"' in html
    db.session.expire_all()
    assert db.session.get(VirtualMachine, vm.id).status == "migrating"


def test_without_csrf_nothing_happens(app, ops):
    rack, source, target, vm = build()
    assert ops.post(f"/servers/{source.id}/drain").status_code == 400
    assert ops.post(f"/racks/{rack.id}/drain").status_code == 400
    assert job_count() == 1
    assert db.session.get(Baremetal, source.id).status == "active"


def test_only_operators_drain(app):
    rack, source, target, vm = build()
    maintainer = client_for(app, "watcher", maintainer_account=f.maintainer().account)
    for url in (f"/servers/{source.id}/drain", f"/racks/{rack.id}/drain"):
        assert maintainer.get(url).status_code == 403
        assert post(maintainer, url).status_code == 403
    assert post(maintainer, f"/servers/{source.id}/return").status_code == 403
    assert "Drain" not in text(maintainer.get(f"/servers/{source.id}"))
    assert job_count() == 1


def test_unknown_ids_are_404(app, ops):
    for url in ("/servers/99999/drain", "/racks/99999/drain"):
        assert ops.get(url).status_code == 404
        assert post(ops, url).status_code == 404
