"""Clusters spread their nodes (SPEC 8.2): at creation, when scaling up (the live nodes are
the set's existing members), a new bastion away from the control planes; API and wizard."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.clusters import service
from portal.extensions import db
from portal.models import Baremetal, VirtualMachine
from portal.scheduler.explain import MEMBER
from portal.scheduler.reservation import PlacementRefused
from tests import factories as f
from tests.api.conftest import Api, assert_problem, token_for
from tests.clusters.test_clusters import estate, request
from tests.conftest import csrf_token_from, log_in


def servers_of(cluster):
    return Counter(vm.baremetal_id for vm in service.live_nodes(cluster))


def test_a_new_cluster_puts_every_node_and_its_bastion_on_its_own_server(app):
    e = estate(racks=3, per_rack=3)
    cluster = service.create_cluster(
        request(e, workers=4, bastion="new", bastion_flavor_id=e.flavor.id), e.op
    )
    vms = db.session.scalars(select(VirtualMachine)).all()
    assert len({vm.baremetal_id for vm in vms}) == 8
    preview = service.preview_cluster(request(e, workers=4, bastion="new",
                                              bastion_flavor_id=e.flavor.id))
    assert preview.result.spread == (
        "3 control planes on 3 racks; 4 workers on 4 servers; bastion apart from the control "
        "planes"
    )
    assert cluster.status == "provisioning" and counter_drift() == []


def test_a_bastion_avoids_the_control_planes_even_when_packing(app):
    e = estate(racks=2, per_rack=2)
    preview = service.preview_cluster(
        request(e, workers=0, bastion="new", bastion_flavor_id=e.flavor.id, anti_affinity="none")
    )
    cps = {host.id for node, host in preview.chosen() if node.role == "control-plane"}
    (bastion,) = [host.id for node, host in preview.chosen() if node.role == "bastion"]
    assert bastion not in cps
    crowded = estate(racks=3, per_rack=1)
    shared = service.preview_cluster(
        request(crowded, workers=0, bastion="new", bastion_flavor_id=crowded.flavor.id)
    )
    assert shared.ok
    assert shared.result.spread.endswith("bastion on a control plane's server (no other "
                                         "server had room)")


def test_scale_up_places_new_workers_away_from_the_clusters_nodes(app):
    e = estate(racks=3, per_rack=3)
    cluster = service.create_cluster(request(e, workers=2), e.op)
    before = set(servers_of(cluster))
    added = service.scale_workers(cluster, 6, e.op)
    assert len(added) == 4
    assert {vm.baremetal_id for vm in added}.isdisjoint(before)
    assert len({vm.baremetal_id for vm in added}) == 4
    assert counter_drift() == []


def free_cpu():
    return dict(db.session.execute(select(Baremetal.id, Baremetal.available_cpu)).all())


def test_hard_scale_up_beyond_free_servers_is_refused_and_changes_nothing(app):
    e = estate(racks=3, per_rack=2)
    cluster = service.create_cluster(request(e, workers=2), e.op)
    service.scale_workers(cluster, 3, e.op, anti_affinity="hard")
    assert len(servers_of(cluster)) == 6 and max(servers_of(cluster).values()) == 1
    before, count = free_cpu(), db.session.scalar(select(func.count(VirtualMachine.id)))
    with pytest.raises(PlacementRefused) as refused:
        service.scale_workers(cluster, 4, e.op, anti_affinity="hard")
    assert refused.value.refusal.details["reasons"] == {MEMBER: 6}
    assert free_cpu() == before
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == count


def test_scale_with_an_unknown_setting_is_refused(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=1), e.op)
    with pytest.raises(service.ClusterError, match="Choose how the VMs share servers"):
        service.scale_workers(cluster, 2, e.op, anti_affinity="strict")
    assert len(service.live_nodes(cluster)) == 4


# --- API and wizard ----------------------------------------------------------------------


def cluster_body(e, **kw):
    return {"name": f"c{f.n()}", "tenant_id": e.tenant.id, "group_id": e.group.id,
            "version": "1.31.2", "control_plane_flavor_id": e.flavor.id, "workers": 2,
            "worker_flavor_id": e.flavor.id, **kw}


def test_api_create_hard_and_scale_take_anti_affinity(app):
    e = estate(racks=3, per_rack=2)
    api, token = Api(app.test_client()), token_for(e.op)
    refused = api.post("/clusters", token, cluster_body(e, workers=4, anti_affinity="hard"))
    assert assert_problem(refused, 409, "insufficient_capacity")["details"]["reasons"] == {
        MEMBER: 6
    }
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 0
    created = api.post("/clusters", token, cluster_body(e, anti_affinity="hard"))
    assert created.status_code == 201, created.get_json()
    cluster_id = created.get_json()["id"]
    bad = api.post(f"/clusters/{cluster_id}/scale", token, {"workers": 3, "anti_affinity": "x"})
    assert_problem(bad, 422, "validation_error")
    scaled = api.post(f"/clusters/{cluster_id}/scale", token,
                      {"workers": 3, "anti_affinity": "hard"})
    assert scaled.status_code == 202, scaled.get_json()
    ids = db.session.scalars(select(VirtualMachine.baremetal_id)).all()
    assert len(ids) == 6 and len(set(ids)) == 6


def test_wizard_offers_the_setting_and_previews_the_spread(app):
    e = estate(racks=3, per_rack=2)
    f.user("ops2", operator=True)
    db.session.commit()
    client = app.test_client()
    log_in(client, "ops2", f.PASSWORD)
    page = client.get("/clusters/new").get_data(as_text=True)
    assert "Spread across servers (soft)" in page and "Pack densely (none)" in page
    data = {"tenant_id": e.tenant.id, "group_id": e.group.id, "name": "spready",
            "version": "1.31.2", "control_planes": 3, "control_plane_flavor_id": e.flavor.id,
            "workers": 3, "worker_flavor_id": e.flavor.id, "bastion": "none",
            "anti_affinity": "hard", "action": "preview",
            "csrf_token": csrf_token_from(page)}
    html = client.post("/clusters/new", data=data).get_data(as_text=True)
    assert "3 control planes on 3 racks; 3 workers on 3 servers" in html
    data["workers"] = 4
    html = client.post("/clusters/new", data=data).get_data(as_text=True)
    assert "already holds a member of this set" in html
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == 0


def test_the_cluster_page_scales_up_with_the_chosen_spread(app):
    e = estate(racks=3, per_rack=2)
    f.user("ops3", operator=True)
    db.session.commit()
    cluster = service.create_cluster(request(e, workers=2), e.op)
    client = app.test_client()
    log_in(client, "ops3", f.PASSWORD)
    page = client.get(f"/clusters/{cluster.id}").get_data(as_text=True)
    assert 'name="anti_affinity"' in page and "Strictly one per server (hard)" in page
    token = csrf_token_from(page)
    before = free_cpu()
    refused = client.post(f"/clusters/{cluster.id}/actions", follow_redirects=True, data={
        "csrf_token": token, "op": "scale", "workers": 4, "anti_affinity": "hard"})
    assert "already holds a member of this set" in refused.get_data(as_text=True)
    assert free_cpu() == before
    done = client.post(f"/clusters/{cluster.id}/actions", data={
        "csrf_token": token, "op": "scale", "workers": 3, "anti_affinity": "hard"})
    assert done.status_code == 302
    db.session.expire_all()
    assert len(servers_of(cluster)) == 6 and max(servers_of(cluster).values()) == 1
