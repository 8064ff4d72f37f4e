"""A server's hypervisor URI (SPEC 8.8): set and cleared on the form, in the API and by
the CSV import; shown on its page; audited; bad values refused with the reason, changing
nothing. The claim API hands it to agents with the rest of what a driver needs."""

from __future__ import annotations

import pytest

from portal.baremetals import service
from portal.extensions import db
from portal.models import Baremetal
from tests import factories as f
from tests.api.conftest import Api, token_for
from tests.baremetals.pages import events, post, text

URI = "qemu+ssh://root@kvm-07.mgmt/system?keyfile=/etc/portal/ssh/id_ed25519&no_tty=1"


@pytest.mark.parametrize("uri", [
    "qemu:///system", "qemu+ssh://root@kvm-07/system", "test:///default",
    "qemu+tls://kvm-07.example.net:16514/system", "qemu+ssh://root@[2001:db8::7]/system",
    URI, "esx://vcenter-01/?no_verify=1",
])
def test_libvirt_uris_are_accepted(uri):
    assert service.hypervisor_uri_problem(uri) is None


@pytest.mark.parametrize("uri, problem", [
    ("kvm-07", "is a libvirt connection URI"),
    ("qemu+ssh://root@kvm 07/system", "is a libvirt connection URI"),
    ("QEMU:///system", "is a libvirt connection URI"),
    ("://host/system", "is a libvirt connection URI"),
    ("qemu:///system\x00", "control character"),
    ("qemu:///sys\ntem", "control character"),
    ("qemu+ssh://root@host/" + "x" * 600, "at most 512 characters (this one has 621)"),
])
def test_other_values_are_refused_with_the_reason(uri, problem):
    assert problem in service.hypervisor_uri_problem(uri)


def test_the_form_sets_shows_and_clears_it(app, ops):
    server = f.server(name="kvm-07")
    db.session.commit()
    form = {k: v for k, v in service.ServerFields.of(server).__dict__.items()
            if v is not None and k not in ("group_id", "rack_id", "rack_unit")}
    response = post(ops, f"/servers/{server.id}/edit", {**form, "hypervisor_uri": f" {URI} "})
    assert response.status_code == 302, text(response)
    db.session.refresh(server)
    assert server.hypervisor_uri == URI
    page = text(ops.get(f"/servers/{server.id}"))
    assert '<code class="hypervisor-uri">qemu+ssh://root@kvm-07.mgmt/system?keyfile=' \
           '/etc/portal/ssh/id_ed25519&amp;no_tty=1</code>' in page
    (change,) = [e for e in events("baremetal", server.id) if "hypervisor_uri" in e.changes]
    assert change.changes["hypervisor_uri"] == {"from": None, "to": URI}

    response = post(ops, f"/servers/{server.id}/edit", {**form, "hypervisor_uri": "kvm 07"})
    assert response.status_code == 422
    assert "A hypervisor URI is a libvirt connection URI" in text(response)
    db.session.refresh(server)
    assert server.hypervisor_uri == URI  # unchanged

    assert post(ops, f"/servers/{server.id}/edit", {**form, "hypervisor_uri": ""}
                ).status_code == 302
    db.session.refresh(server)
    assert server.hypervisor_uri is None
    assert 'name="hypervisor_uri" placeholder="qemu+ssh://root@host/system" type="text" ' \
           'value=""' in text(ops.get(f"/servers/{server.id}/edit"))


def test_the_api_reads_writes_and_validates_it(app):
    api = Api(app.test_client())
    operator = token_for(f.user(operator=True))
    created = api.post("/baremetals", operator, json={
        "name": "kvm-08", "serial": "SN-KVM-08", "total_cpu": 64, "total_memory": 256,
        "total_storage": 2000, "hypervisor_uri": URI})
    assert created.status_code == 201, created.json
    assert created.json["hypervisor_uri"] == URI
    server_id = created.json["id"]
    assert api.get(f"/baremetals/{server_id}", operator).json["hypervisor_uri"] == URI

    bad = api.patch(f"/baremetals/{server_id}", operator,
                    json={"hypervisor_uri": "ssh root@kvm-08"})
    assert bad.status_code == 422 and bad.json["code"] == "validation_error"
    assert "libvirt connection URI" in bad.text
    nul = api.patch(f"/baremetals/{server_id}", operator, json={"hypervisor_uri": "qemu:///\x00"})
    assert nul.status_code == 422
    long = api.patch(f"/baremetals/{server_id}", operator,
                     json={"hypervisor_uri": "qemu:///" + "x" * 600})
    assert long.status_code == 422
    assert api.get(f"/baremetals/{server_id}", operator).json["hypervisor_uri"] == URI

    cleared = api.patch(f"/baremetals/{server_id}", operator, json={"hypervisor_uri": None})
    assert cleared.status_code == 200 and cleared.json["hypervisor_uri"] is None
    assert api.patch(f"/baremetals/{server_id}", operator,
                     json={"name": "kvm-08b"}).json["hypervisor_uri"] is None


def test_the_csv_import_sets_it_and_refuses_a_bad_one_by_line(app):
    service.import_servers("\n".join([
        "name,serial,total_cpu,total_memory,total_storage,hypervisor_uri",
        f"kvm-09,SN-KVM-09,64,256,2000,{URI}",
        "kvm-10,SN-KVM-10,64,256,2000,",
    ]))
    uris = dict(db.session.execute(db.select(Baremetal.name, Baremetal.hypervisor_uri)).all())
    assert uris == {"kvm-09": URI, "kvm-10": None}
    with pytest.raises(service.ImportRefused) as refused:
        service.import_servers("\n".join([
            "name,serial,hypervisor_uri",
            "kvm-09,SN-KVM-09,qemu:///system",
            "kvm-10,SN-KVM-10,kvm 10",
        ]))
    assert refused.value.problems == [
        "line 3: A hypervisor URI is a libvirt connection URI such as "
        "qemu+ssh://root@host/system or qemu:///system (no spaces)."]
    db.session.rollback()
    assert db.session.scalar(db.select(Baremetal.hypervisor_uri).where(
        Baremetal.name == "kvm-09")) == URI  # all or nothing: the good row changed nothing
    service.import_servers("name,serial,hypervisor_uri\nkvm-09,SN-KVM-09,\n")
    assert db.session.scalar(db.select(Baremetal.hypervisor_uri).where(
        Baremetal.name == "kvm-09")) == URI  # an empty cell keeps the current value


def test_agents_claim_jobs_with_the_hypervisor_uri_over_the_api(app):
    from portal.scheduler.reservation import NodeSpec, reserve

    group = f.group()
    f.server(group=group, name="kvm-11", hypervisor_uri=URI)
    tenant, flavor = f.tenant(name="acme"), f.flavor(cpu=2, memory=4, storage=20)
    f.quota(tenant, group)
    operator = token_for(f.user(operator=True))
    (vm,) = reserve(tenant, group, [NodeSpec("web-01", "standalone", flavor)], user=None)
    api = Api(app.test_client())
    claimed = api.post("/provision-jobs/claim", operator,
                       json={"agent": "remote", "dcs": ["elsewhere"]})
    assert claimed.json == {"items": [], "total": 0}  # out of this agent's scope
    claimed = api.post("/provision-jobs/claim", operator, json={"agent": "remote"})
    (job,) = claimed.json["items"]
    assert {k: job[k] for k in ("vm_name", "tenant_name", "spec_name", "cpu", "memory",
                                "storage", "baremetal_name", "hypervisor_uri",
                                "target_hypervisor_uri", "cluster_nodes")} == {
        "vm_name": "web-01", "tenant_name": "acme", "spec_name": flavor.name, "cpu": 2,
        "memory": 4, "storage": 20, "baremetal_name": "kvm-11", "hypervisor_uri": URI,
        "target_hypervisor_uri": None, "cluster_nodes": []}
    done = api.post(f"/provision-jobs/{job['id']}/complete", operator, json={
        "agent": "remote", "succeeded": True, "message": "built", "output": "step 1\nstep 2\n"})
    assert done.status_code == 200 and done.json["output"] == "step 1\nstep 2\n"
    assert api.get(f"/provision-jobs/{job['id']}", operator).json["output"] == "step 1\nstep 2\n"
    assert "output" not in api.get("/provision-jobs", operator).json["items"][0]
    assert vm.id == job["vm_id"]
