"""The cluster lifecycle as users expect it: deleting a cluster offers to delete the bastion
built with it, scale-down confirms which workers go, and the page says where things stand."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.baremetals.counters import counter_drift
from portal.clusters import service
from portal.extensions import db
from portal.models import VirtualMachine
from tests import factories as f
from tests.api.conftest import Api, assert_problem, token_for
from tests.clusters.test_clusters import estate, finish_all, request
from tests.conftest import csrf_token_from, log_in


def with_new_bastion(e, **kw):
    cluster = service.create_cluster(
        request(e, bastion="new", bastion_flavor_id=e.flavor.id, **kw), e.op
    )
    finish_all()
    db.session.expire_all()
    (link,) = cluster.bastion_links
    return cluster, link.vm


def used_cpu(e):
    """CPU the tenant's live VMs hold in the group (what its quota counts)."""
    return sum(
        vm.cpu
        for vm in db.session.scalars(
            select(VirtualMachine).where(
                VirtualMachine.tenant_id == e.tenant.id,
                VirtualMachine.status.in_(("provisioning", "active", "deleting")),
            )
        )
    )


# --- which bastion was created with the cluster --------------------------------------------


def test_the_wizard_marks_the_bastion_it_builds_and_not_an_existing_one(app):
    e = estate()
    cluster, bastion = with_new_bastion(e)
    assert cluster.bastion_links[0].created_with_cluster is True
    other = service.create_cluster(
        request(e, bastion="existing", bastion_vm_id=bastion.id), e.op
    )
    assert other.bastion_links[0].created_with_cluster is False
    added = service.add_bastion(cluster, _spare_vm(e).id, e.op)
    assert added.created_with_cluster is False


def _spare_vm(e):
    server = db.session.scalars(
        select(VirtualMachine.baremetal_id).where(VirtualMachine.tenant_id == e.tenant.id)
    ).first()
    from portal.models import Baremetal

    vm = f.vm(e.tenant, db.session.get(Baremetal, server), e.flavor, name=f"spare-{f.n()}")
    db.session.commit()
    return vm


# --- deleting a cluster with and without its bastion ---------------------------------------


def test_deleting_a_cluster_deletes_its_own_bastion_by_default(app):
    e = estate()
    cluster, bastion = with_new_bastion(e)
    assert [o.offered for o in service.bastion_offers(cluster)] == [True]
    service.delete_cluster(cluster, e.op)
    db.session.expire_all()
    assert bastion.status == "deleting"
    assert counter_drift() == []
    finish_all()
    db.session.expire_all()
    assert (cluster.status, bastion.status) == ("deleted", "deleted")
    assert used_cpu(e) == 0
    assert counter_drift() == []


def test_deleting_a_cluster_can_keep_its_bastion(app):
    e = estate()
    cluster, bastion = with_new_bastion(e)
    service.delete_cluster(cluster, e.op, delete_bastion=False)
    finish_all()
    db.session.expire_all()
    assert (cluster.status, bastion.status) == ("deleted", "active")
    assert used_cpu(e) == bastion.cpu  # kept, it holds its quota
    assert counter_drift() == []


def test_a_bastion_added_from_an_existing_vm_is_never_offered(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    finish_all()
    spare = _spare_vm(e)
    service.add_bastion(cluster, spare.id, e.op)
    db.session.expire_all()
    (offer,) = service.bastion_offers(cluster)
    assert not offer.offered and "existing VM" in offer.reason
    service.delete_cluster(cluster, e.op)  # delete_bastion defaults to True
    finish_all()
    db.session.expire_all()
    assert spare.status == "active"
    assert counter_drift() == []


def test_a_bastion_serving_another_cluster_stays(app):
    e = estate(per_rack=4)
    first, bastion = with_new_bastion(e)
    second = service.create_cluster(
        request(e, bastion="existing", bastion_vm_id=bastion.id), e.op
    )
    finish_all()
    db.session.expire_all()
    (offer,) = service.bastion_offers(first)
    assert not offer.offered and second.name in offer.reason
    service.delete_cluster(first, e.op)
    finish_all()
    db.session.expire_all()
    assert bastion.status == "active"
    assert counter_drift() == []
    # With the other cluster gone too, the bastion built with the first is no longer
    # anyone's; the second never built it, so it is not offered there either.
    assert [o.offered for o in service.bastion_offers(second)] == [False]


def _page_client(app, user):
    client = app.test_client()
    log_in(client, user.username, f.PASSWORD)
    return client


def test_delete_page_offers_the_bastion_checked_and_honours_the_checkbox(app):
    e = estate(per_rack=4)
    keep, kept_bastion = with_new_bastion(e)
    drop, dropped_bastion = with_new_bastion(e)
    client = _page_client(app, e.op)
    page = client.get(f"/clusters/{keep.id}/delete").get_data(as_text=True)
    assert 'name="delete_bastion" value="yes"' in page and "checked" in page
    assert kept_bastion.name in page
    token = csrf_token_from(page)
    # Unchecked: the browser sends no delete_bastion at all.
    assert client.post(f"/clusters/{keep.id}/delete",
                       data={"csrf_token": token}).status_code == 302
    assert client.post(f"/clusters/{drop.id}/delete",
                       data={"csrf_token": token, "delete_bastion": "yes"}).status_code == 302
    finish_all()
    db.session.expire_all()
    assert (keep.status, kept_bastion.status) == ("deleted", "active")
    assert (drop.status, dropped_bastion.status) == ("deleted", "deleted")
    assert counter_drift() == []


def test_delete_page_shows_why_a_bastion_stays(app):
    e = estate()
    cluster = service.create_cluster(request(e), e.op)
    finish_all()
    spare = _spare_vm(e)
    service.add_bastion(cluster, spare.id, e.op)
    page = _page_client(app, e.op).get(f"/clusters/{cluster.id}/delete").get_data(as_text=True)
    assert 'name="delete_bastion"' not in page
    assert f"Bastion kept: {spare.name} was an existing VM" in page


def test_delete_needs_csrf(app):
    e = estate()
    cluster, bastion = with_new_bastion(e)
    client = _page_client(app, e.op)
    response = client.post(f"/clusters/{cluster.id}/delete", data={"delete_bastion": "yes"})
    assert response.status_code == 400
    db.session.expire_all()
    assert (cluster.status, bastion.status) == ("active", "active")


def test_api_delete_takes_delete_bastion(app):
    e = estate(per_rack=4)
    api = Api(app.test_client())
    token = token_for(e.op)
    keep, kept_bastion = with_new_bastion(e)
    drop, dropped_bastion = with_new_bastion(e)
    assert_problem(api.delete(f"/clusters/{keep.id}?delete_bastion=maybe", token), 422,
                   "validation_error")
    db.session.expire_all()
    assert keep.status == "active"  # bad input changes nothing
    assert api.delete(f"/clusters/{keep.id}?delete_bastion=false", token).status_code == 202
    assert api.delete(f"/clusters/{drop.id}", token).status_code == 202
    finish_all()
    db.session.expire_all()
    assert (kept_bastion.status, dropped_bastion.status) == ("active", "deleted")
    assert counter_drift() == []
    spec = api.get("/openapi.json").get_json()
    params = spec["paths"]["/api/v1/clusters/{cluster_id}"]["delete"]["parameters"]
    assert "delete_bastion" in {p["name"] for p in params}


# --- scale-down names the workers that go ----------------------------------------------------


def _workers(cluster):
    db.session.expire_all()
    return sorted(
        (vm.name, vm.status)
        for vm in db.session.scalars(
            select(VirtualMachine).where(
                VirtualMachine.k8s_cluster_id == cluster.id, VirtualMachine.role == "worker"
            )
        )
    )


def test_scale_down_confirms_the_workers_that_go_before_acting(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=3), e.op)
    finish_all()
    client = _page_client(app, e.op)
    token = csrf_token_from(client.get(f"/clusters/{cluster.id}").get_data(as_text=True))
    before = _workers(cluster)
    page = client.post(f"/clusters/{cluster.id}/actions",
                       data={"csrf_token": token, "op": "scale", "workers": "1"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Remove 2 workers" in html
    going = [f"{cluster.name}-worker-2", f"{cluster.name}-worker-3"]  # the newest
    assert all(name in html for name in going)
    assert f"{cluster.name}-worker-1</a>" not in html
    assert _workers(cluster) == before  # asking changed nothing
    ids = re.findall(r'name="remove" value="(\d+)"', html)
    done = client.post(f"/clusters/{cluster.id}/actions", data={
        "csrf_token": token, "op": "scale", "workers": "1", "confirmed": "yes", "remove": ids,
    })
    assert done.status_code == 302
    after = dict(_workers(cluster))
    assert {name: after[name] for name in going} == {name: "deleting" for name in going}
    assert after[f"{cluster.name}-worker-1"] == "active"
    assert counter_drift() == []


def test_scale_down_of_chosen_workers_lists_exactly_them(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=3), e.op)
    finish_all()
    first = db.session.scalar(select(VirtualMachine).where(
        VirtualMachine.name == f"{cluster.name}-worker-1"))
    client = _page_client(app, e.op)
    token = csrf_token_from(client.get(f"/clusters/{cluster.id}").get_data(as_text=True))
    html = client.post(f"/clusters/{cluster.id}/actions", data={
        "csrf_token": token, "op": "scale", "workers": "2", "remove": [str(first.id)],
    }).get_data(as_text=True)
    assert "Remove 1 worker from" in html and first.name in html
    assert f"{cluster.name}-worker-3</a>" not in html


def test_a_scale_down_the_service_would_refuse_is_refused_before_confirming(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=3), e.op)
    finish_all()
    client = _page_client(app, e.op)
    token = csrf_token_from(client.get(f"/clusters/{cluster.id}").get_data(as_text=True))
    before = _workers(cluster)
    response = client.post(f"/clusters/{cluster.id}/actions", data={
        "csrf_token": token, "op": "scale", "workers": "0", "remove": ["999999"],
    }, follow_redirects=True)
    assert "Choose workers of this cluster" in response.get_data(as_text=True)
    assert _workers(cluster) == before


def test_scale_up_needs_no_confirmation(app):
    e = estate()
    cluster = service.create_cluster(request(e, workers=1), e.op)
    finish_all()
    client = _page_client(app, e.op)
    token = csrf_token_from(client.get(f"/clusters/{cluster.id}").get_data(as_text=True))
    response = client.post(f"/clusters/{cluster.id}/actions",
                           data={"csrf_token": token, "op": "scale", "workers": "2"})
    assert response.status_code == 302
    assert len(_workers(cluster)) == 2


# --- plain status messages ---------------------------------------------------------------------


def test_the_cluster_page_says_where_the_cluster_stands(app):
    e = estate()
    cluster = service.create_cluster(request(e, control_planes=3, workers=2), e.op)
    client = _page_client(app, e.op)
    assert "0 of 5 nodes ready. 5 being built." in client.get(
        f"/clusters/{cluster.id}").get_data(as_text=True)
    from portal.provisioning import jobs

    for job in jobs.claim("test-agent", limit=2):
        jobs.complete(job.id, "test-agent", True, "")
    assert "2 of 5 nodes ready. 3 being built." in client.get(
        f"/clusters/{cluster.id}").get_data(as_text=True)
    finish_all()
    assert "All 5 nodes ready." in client.get(f"/clusters/{cluster.id}").get_data(as_text=True)
    service.delete_cluster(cluster, e.op)
    for job in jobs.claim("test-agent", limit=2):
        jobs.complete(job.id, "test-agent", True, "")
    assert "Deleting: 3 nodes left." in client.get(
        f"/clusters/{cluster.id}").get_data(as_text=True)


def test_failed_nodes_are_named_in_the_message(app):
    e = estate()
    cluster = service.create_cluster(request(e, control_planes=1, workers=1), e.op)
    finish_all(ok=False, message="disk full")
    db.session.expire_all()
    assert service.progress(cluster, service.cluster_nodes(cluster)) == (
        "0 of 2 nodes ready. 2 nodes failed: retry them or delete the cluster."
    )
