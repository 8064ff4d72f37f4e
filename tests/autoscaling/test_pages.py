"""The VM group and scaling policy pages: what an operator and a tenant admin see and do,
another tenant's objects answering 404, the decision timeline (newest first, paged, with
inputs and explanations) and lists whose query count does not grow with their rows."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from portal.autoscaling import service
from portal.autoscaling.service import PolicyFields
from portal.extensions import db
from portal.models import ScalingPolicy, VmGroup, utcnow
from tests import factories as f
from tests.autoscaling.conftest import Samples
from tests.conftest import csrf_token_from, log_in
from tests.web.test_lists import count_queries


def signed_in(app, username, password=f.PASSWORD):
    client = app.test_client()
    assert log_in(client, username, password).status_code == 302
    return client


def post(client, url, data):
    token = csrf_token_from(client.get(url if "/resize" not in url else
                                       url.rsplit("/", 1)[0]).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_create_a_group_on_its_page_then_resize_and_delete_it(estate):
    f.user("shop-admin", tenants=("shop",))
    db.session.commit()
    client = signed_in(estate.app, "shop-admin")
    form = {"tenant_id": estate.tenant.id, "group_id": estate.group.id,
            "spec_id": estate.flavor.id, "name": "api", "size": 3, "anti_affinity": "soft",
            "action": "create"}
    created = post(client, "/vm-groups/new", form)
    assert created.status_code == 302, created.get_data(as_text=True)
    vm_group = db.session.scalar(select(VmGroup))
    page = client.get(f"/vm-groups/{vm_group.id}").get_data(as_text=True)
    assert all(f"api-{i}" in page for i in (1, 2, 3)) and "No scaling policy" in page
    resized = post(client, f"/vm-groups/{vm_group.id}/resize", {"size": 1})
    assert resized.status_code == 302
    page = client.get(f"/vm-groups/{vm_group.id}").get_data(as_text=True)
    assert "Resized to 1 members (api-3, api-2)" in page
    refused = post(client, f"/vm-groups/{vm_group.id}/resize", {"size": 20})
    assert "Quota exceeded" in client.get(refused.headers["Location"]).get_data(as_text=True)
    assert post(client, f"/vm-groups/{vm_group.id}/delete", {}).status_code == 302
    db.session.refresh(vm_group)
    assert vm_group.status == "deleted"  # queued creates were cancelled: nothing left
    listed = client.get("/vm-groups/").get_data(as_text=True)
    assert ">api<" in listed


def test_bad_input_on_the_form_is_shown_and_changes_nothing(estate):
    client = signed_in(estate.app, "ops")
    form = {"tenant_id": estate.tenant.id, "group_id": estate.group.id,
            "spec_id": estate.flavor.id, "name": "bad name", "size": 2, "action": "create"}
    answer = post(client, "/vm-groups/new", form)
    assert answer.status_code == 422 and "no spaces" in answer.get_data(as_text=True)
    too_big = post(client, "/vm-groups/new", {**form, "name": "big", "size": 11})
    assert too_big.status_code == 422 and "Quota exceeded" in too_big.get_data(as_text=True)
    assert db.session.scalar(select(VmGroup.id)) is None


def test_another_tenants_group_and_policy_are_not_found(estate):
    vm_group = estate.vm_group(size=1)
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="vm_group", target_id=vm_group.id, max=3))
    other = f.tenant(name="other")
    f.user("other-admin", tenants=("other",))
    f.quota(other, estate.group)
    db.session.commit()
    client = signed_in(estate.app, "other-admin")
    for url in (f"/vm-groups/{vm_group.id}", f"/autoscaling/{policy.id}",
                f"/autoscaling/{policy.id}/edit", f"/vm-groups/{vm_group.id}/delete"):
        assert client.get(url).status_code == 404, url
    assert ">web<" not in client.get("/vm-groups/").get_data(as_text=True)
    assert "web" not in client.get("/autoscaling/?format=csv").get_data(as_text=True)
    # Maintainers read; without a role nothing.
    f.user("nobody")
    db.session.commit()
    assert signed_in(estate.app, "nobody").get("/autoscaling/").status_code == 403


def test_policy_form_creates_in_dry_run_and_refuses_bad_values(estate):
    vm_group = estate.vm_group(size=1)
    client = signed_in(estate.app, "ops")
    page = client.get(f"/autoscaling/new?target=vm_group:{vm_group.id}").get_data(as_text=True)
    (option,) = re.findall(rf'<option[^>]*value="vm_group:{vm_group.id}"[^>]*>', page)
    assert "selected" in option
    bad = post(client, "/autoscaling/new", {"target_ref": f"vm_group:{vm_group.id}", "min": 3,
                                            "max": 2, "metric": "cpu_util", "target": 0.5,
                                            "tolerance": 0.1, "mode": "dry_run",
                                            "scale_down_stabilization_seconds": 300,
                                            "warmup_seconds": 300})
    assert bad.status_code == 422 and "below the minimum" in bad.get_data(as_text=True)
    good = post(client, "/autoscaling/new", {"target_ref": f"vm_group:{vm_group.id}",
                                             "min": 1, "max": 4, "metric": "cpu_util",
                                             "target": 0.5, "tolerance": 0.1,
                                             "mode": "dry_run",
                                             "scale_down_stabilization_seconds": 300,
                                             "warmup_seconds": 300})
    assert good.status_code == 302
    policy = db.session.scalar(select(ScalingPolicy))
    assert (policy.mode, policy.max_size, policy.target) == ("dry_run", 4, 0.5)
    edited = post(client, f"/autoscaling/{policy.id}/edit", {
        "min": 1, "max": 6, "metric": "cpu_util", "target": 0.7, "tolerance": 0.1,
        "mode": "active", "scale_down_stabilization_seconds": 300, "warmup_seconds": 300})
    assert edited.status_code == 302
    db.session.refresh(policy)
    assert (policy.mode, policy.max_size, policy.target) == ("active", 6, 0.7)


def test_the_timeline_shows_decisions_newest_first_with_inputs_and_pages(estate):
    estate.quota.cpu_limit = 12
    db.session.commit()
    web = estate.vm_group(size=2)
    estate.run_agent()
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="vm_group", target_id=web.id, max=8, target=0.5, mode="active"))
    now = utcnow() + timedelta(seconds=400)
    service.evaluate_due(now, Samples(1.0))  # refused by quota: explained, backs off
    client = signed_in(estate.app, "ops")
    page = client.get(f"/autoscaling/{policy.id}").get_data(as_text=True)
    assert "refused" in page and "quota_exceeded" in page and "Quota exceeded" in page
    assert "No new scale-up for 5 minutes" in page and 'id="backoff"' in page
    assert "Inputs: 2 members" in page and "cpu_util average 1" in page
    # Many decisions: newest first, 20 a page, the next page as an HTMX fragment.
    for step in range(1, 30):
        service.update_policy(policy, estate.operator, PolicyFields(
            mode="dry_run" if step % 2 else "active"))
        service.evaluate_due(now + timedelta(seconds=30 * step), Samples(1.0 + step / 100))
    db.session.refresh(policy)
    page = client.get(f"/autoscaling/{policy.id}").get_data(as_text=True)
    assert page.count('class="list-group-item decision"') == 20 and "Page 1 of 2" in page
    times = re.findall(r'data-outcome="(\w+)"', page)
    assert times[0] in ("dry_run", "refused", "acted")
    older = client.get(f"/autoscaling/{policy.id}?page=2", headers={"HX-Request": "true"})
    fragment = older.get_data(as_text=True)
    assert fragment.lstrip().startswith('<section class="card" id="timeline">')
    assert "<html" not in fragment and "Page 2 of 2" in fragment


def test_lists_do_not_grow_their_query_count_with_rows(estate):
    client = signed_in(estate.app, "ops")

    def queries(url):
        client.get(url)  # warm up
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        return counter["n"]

    first = estate.vm_group(name="a", size=1)
    service.create_policy(estate.operator, PolicyFields(target_type="vm_group",
                                                        target_id=first.id, max=2))
    few = queries("/vm-groups/"), queries("/autoscaling/")
    for name in ("b", "c", "d", "e"):
        group = estate.vm_group(name=name, size=1)
        service.create_policy(estate.operator, PolicyFields(target_type="vm_group",
                                                            target_id=group.id, max=2))
    assert (queries("/vm-groups/"), queries("/autoscaling/")) == few
