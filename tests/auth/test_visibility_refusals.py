"""Refusals and filter choices tell a tenant admin nothing about other tenants: the names
of their VMs, of groups they hold no quota in, of maintainers who do not look after them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.clusters import service as clusters
from portal.extensions import db
from portal.models import BastionClusterAssociation, ResourceMaintainer, VirtualMachine
from tests import factories as f
from tests.api.conftest import Api, assert_problem, token_for
from tests.conftest import csrf_token_from, log_in


@pytest.fixture
def estate(app):
    grp = f.group(name="g-mine")
    hidden_group = f.group(name="secret-gpu-pool")
    f.server(group=hidden_group)
    srv = f.server(group=grp)
    mine, theirs = f.tenant(name="mine"), f.tenant(name="theirs")
    f.quota(mine, grp, cpu_limit=40)
    f.quota(theirs, hidden_group)
    flavor = f.flavor()
    cluster = f.cluster(mine, grp, name="my-cluster")
    my_vm = f.vm(mine, srv, flavor, name="jump-01")
    node = f.vm(mine, srv, flavor, name="my-cluster-w1", k8s_cluster_id=cluster.id,
                role="worker")
    their_vm = f.vm(theirs, srv, flavor, name="etl-01")
    deleted = f.vm(mine, srv, flavor, name="gone-01", status="deleted")
    ours_person, ours_group_member, stranger = (
        f.maintainer(name="Ours Person"), f.maintainer(name="Ours Member"),
        f.maintainer(name="Stranger Danger"))
    our_team, other_team = f.maintainer_group(name="our-team"), f.maintainer_group(
        name="their-team")
    from portal.models import MaintainerToMaintainerGroup

    db.session.add(MaintainerToMaintainerGroup(maintainer_id=ours_group_member.id,
                                               group_id=our_team.id))
    db.session.add_all([
        ResourceMaintainer(resource_type="virtual_machine", resource_id=my_vm.id,
                           maintainer_id=ours_person.id),
        ResourceMaintainer(resource_type="k8s_cluster", resource_id=cluster.id,
                           maintainer_group_id=our_team.id),
        ResourceMaintainer(resource_type="virtual_machine", resource_id=their_vm.id,
                           maintainer_id=stranger.id),
        ResourceMaintainer(resource_type="tenant", resource_id=theirs.id,
                           maintainer_group_id=other_team.id),
    ])
    admin = f.user("admin", tenants=("mine",))
    operator = f.user("ops", operator=True)
    db.session.commit()
    return SimpleNamespace(**locals())


def bastions() -> int:
    return db.session.scalar(select(func.count(BastionClusterAssociation.id)))


# --- finding 6: add_bastion does not name other tenants' VMs ----------------------------------


def test_foreign_and_missing_bastion_vms_get_the_same_answer(estate):
    e = estate
    answers = set()
    for vm_id in (e.their_vm.id, 999999, e.deleted.id, e.node.id, None):
        with pytest.raises(clusters.ClusterError) as refused:
            clusters.add_bastion(e.cluster, vm_id, e.operator)
        db.session.rollback()
        answers.add(str(refused.value))
    assert len(answers) == 1, answers
    (answer,) = answers
    assert "etl-01" not in answer and "theirs" not in answer
    assert "mine" in answer  # says whose VM to choose
    assert bastions() == 0
    clusters.add_bastion(e.cluster, e.my_vm.id, e.operator)  # a candidate is accepted
    assert bastions() == 1


def test_bastion_candidates_are_what_add_bastion_accepts(estate):
    e = estate
    candidates = clusters.bastion_candidates(e.cluster)
    assert [vm.name for vm in candidates] == ["jump-01"]


def test_bastion_refusal_on_the_cluster_page_names_no_foreign_vm(app, estate):
    client = app.test_client()
    log_in(client, "admin", f.PASSWORD)
    page = client.get(f"/clusters/{estate.cluster.id}").get_data(as_text=True)
    answers = []
    for vm_id in (estate.their_vm.id, 999999):
        response = client.post(
            f"/clusters/{estate.cluster.id}/actions",
            data={"op": "add_bastion", "vm_id": vm_id, "csrf_token": csrf_token_from(page)},
            follow_redirects=True,
        )
        html = response.get_data(as_text=True)
        assert "etl-01" not in html
        answers.append(html.count("Choose a live VM of mine"))
    assert answers == [1, 1]
    assert bastions() == 0


# --- finding 14: refusals do not name groups the tenant holds no quota in ---------------------


def test_vm_wizard_refusal_does_not_name_a_group_without_quota(app, estate):
    client = app.test_client()
    log_in(client, "admin", f.PASSWORD)
    page = client.get("/vms/new").get_data(as_text=True)
    response = client.post("/vms/new", data={
        "csrf_token": csrf_token_from(page), "action": "create", "tenant_id": estate.mine.id,
        "group_id": estate.hidden_group.id, "spec_id": estate.flavor.id, "name": "probe",
        "count": 1, "strategy": "best_fit"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "has no quota in this group" in html
    assert "secret-gpu-pool" not in html
    assert db.session.scalar(select(func.count(VirtualMachine.id)).where(
        VirtualMachine.name == "probe")) == 0


def test_api_refusals_do_not_name_a_group_without_quota(app, estate):
    api, token = Api(app.test_client()), token_for(estate.admin)
    base = {"tenant_id": estate.mine.id, "group_id": estate.hidden_group.id}
    vm = api.post("/vms", token, {**base, "name": "probe", "spec_id": estate.flavor.id})
    cluster = api.post("/clusters", token, {
        **base, "name": "probe", "version": "1.31.2",
        "control_plane_flavor_id": estate.flavor.id, "control_planes": 1})
    preview = api.post("/placements/preview", token,
                       {"kind": "vm", **base, "spec_id": estate.flavor.id})
    for response in (vm, cluster, preview):
        assert "secret-gpu-pool" not in response.get_data(as_text=True)
    assert_problem(vm, 422, "validation_error")
    assert db.session.scalar(select(func.count(VirtualMachine.id)).where(
        VirtualMachine.name.like("probe%"))) == 0


def test_reservation_no_quota_refusal_names_no_group(estate):
    from portal.scheduler.reservation import preview

    result = preview(estate.mine, estate.hidden_group, []).result
    assert result.code == "no_quota"
    assert "secret-gpu-pool" not in result.message + str(result.details)


# --- finding 14: filter choices show only the tenant admin's own maintainers ----------------


@pytest.mark.parametrize("path", ["/vms/", "/clusters/"])
def test_tenant_admin_sees_only_their_maintainers_in_filter_choices(app, estate, path):
    client = app.test_client()
    log_in(client, "admin", f.PASSWORD)
    html = client.get(path).get_data(as_text=True)
    assert "Ours Person" in html and "Ours Member" in html and "our-team" in html
    assert "Stranger Danger" not in html and "their-team" not in html


def test_operator_still_sees_every_maintainer_in_filter_choices(app, estate):
    client = app.test_client()
    log_in(client, "ops", f.PASSWORD)
    html = client.get("/vms/").get_data(as_text=True)
    assert "Stranger Danger" in html and "their-team" in html
