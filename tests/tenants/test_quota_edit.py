"""Quota edits in place: the row becomes a form, errors stay in the row and change nothing,
a save swaps the row back, refreshes the group's totals and leaves an audit trail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, BaremetalGroupTenantQuota
from tests import factories as f
from tests.conftest import csrf_token_from, log_in

HX = {"HX-Request": "true"}
FIELDS = ("cpu_limit", "cpu_percent", "memory_limit", "memory_percent", "storage_limit",
          "storage_percent")


@pytest.fixture
def estate(app):
    grp = f.group(name="tw-north")
    srv = f.server(group=grp, cpu=128, memory=512, storage=4000)
    acme, globex, initech = f.tenant(name="acme"), f.tenant(name="globex"), f.tenant(name="initech")
    quota = f.quota(acme, grp, cpu_limit=40, memory_percent=50)
    other = f.quota(globex, grp, cpu_percent=25)
    flavor = f.flavor(cpu=16, memory=32, storage=100)
    for _ in range(5):  # acme uses 80 CPU
        f.vm(acme, srv, flavor)
    f.user("ops-admin", operator=True)
    f.user("acme-admin", tenants=("acme",))
    f.user("watcher", maintainer_account=f.maintainer(account="watch").account)
    db.session.commit()
    return SimpleNamespace(**locals())


@pytest.fixture
def ops(app, estate):
    client = app.test_client()
    log_in(client, "ops-admin", f.PASSWORD)
    return client


def token(client, url="/groups/"):
    return csrf_token_from(client.get(url).get_data(as_text=True))


def edit(client, quota, on="group", headers=HX, **values):
    data = {f"q{quota.id}-{name}": "" for name in FIELDS}
    data.update({f"q{quota.id}-{k}": str(v) for k, v in values.items()})
    data[f"q{quota.id}-csrf_token"] = token(client)
    return client.post(f"/tenants/quotas/{quota.id}/edit?on={on}", data=data, headers=headers)


def limits(quota_id):
    db.session.expire_all()
    quota = db.session.get(BaremetalGroupTenantQuota, quota_id)
    return {name: getattr(quota, name) for name in FIELDS}


def events():
    return db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.object_type == "quota"))


def test_edit_link_turns_the_row_into_a_form(ops, estate):
    html = ops.get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert f'id="quota-{estate.quota.id}"' in html
    assert f'hx-get="/tenants/quotas/{estate.quota.id}/edit?on=group"' in html
    row = ops.get(f"/tenants/quotas/{estate.quota.id}/edit?on=group", headers=HX)
    text = row.get_data(as_text=True)
    assert row.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith(
        f'<tr id="quota-{estate.quota.id}" class="quota-row is-editing"')
    assert f'name="q{estate.quota.id}-cpu_limit"' in text and 'value="40"' in text
    assert f'form="quota-form-{estate.quota.id}"' in text
    cancel = ops.get(f"/tenants/quotas/{estate.quota.id}?on=group", headers=HX)
    assert cancel.get_data(as_text=True).lstrip().startswith(
        f'<tr id="quota-{estate.quota.id}" class="quota-row">')


@pytest.mark.parametrize("values, field, message", [
    ({"cpu_limit": 64, "cpu_percent": 50}, "cpu_limit",
     "Set an absolute CPU limit or a percentage, not both"),
    ({"memory_percent": 120}, "memory_percent", "between 0 and 100"),
    ({"storage_limit": -5}, "storage_limit", "cannot be negative"),
    ({"cpu_percent": -1}, "cpu_percent", "between 0 and 100"),
    ({"cpu_limit": "lots"}, "cpu_limit", "Not a valid integer value"),
    ({"cpu_limit": 10**12}, "cpu_limit", "at most"),
])
def test_bad_values_are_shown_in_the_row_and_change_nothing(ops, estate, values, field, message):
    before, count = limits(estate.quota.id), events()
    response = edit(ops, estate.quota, **values)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html and "is-editing" in html
    assert message in html
    # The message sits under the offending input, in this row.
    assert f'id="q{estate.quota.id}-{field}"' in html and "is-invalid" in html
    assert limits(estate.quota.id) == before and events() == count


def test_a_valid_edit_swaps_the_row_back_refreshes_totals_and_is_audited(ops, estate):
    response = edit(ops, estate.quota, cpu_limit=64, memory_percent=50)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="quota-{estate.quota.id}" class="quota-row">')
    assert "80 of 64 cores" in html and "over by 16" in html
    # Out of band: the group's totals (limits now add up to 64 + 25% of 128 = 96) and alerts.
    assert 'id="group-totals" class="card h-100" hx-swap-oob="true"' in html
    assert "96 cores" in html
    assert 'id="flash-oob"' in html and "CPU limit 40 → 64" in html
    assert 'id="group-history" hx-swap-oob="true"' in html
    assert "CPU limit 40 → 64, by user ops-admin, at 20" in html
    assert ("acme already uses 80 CPU in this group; the new limit 64 stops new VMs but keeps "
            "the existing ones.") in html
    assert limits(estate.quota.id)["cpu_limit"] == 64
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "quota"))
    assert event.action == "update" and event.username == "ops-admin"
    assert event.object_label == "acme in tw-north"
    assert event.changes == {"cpu_limit": {"from": 40, "to": 64}}
    quota = db.session.get(BaremetalGroupTenantQuota, estate.quota.id)
    assert quota.updated_by_user.username == "ops-admin"
    # Read back as a sentence on the group's history panel.
    page = ops.get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    assert "CPU limit 40 → 64, by user ops-admin, at 20" in page


def test_switching_a_dimension_from_absolute_to_percent(ops, estate):
    response = edit(ops, estate.quota, cpu_percent=50, memory_percent=50)
    assert response.status_code == 200
    assert limits(estate.quota.id)["cpu_limit"] is None
    assert limits(estate.quota.id)["cpu_percent"] == 50
    assert "limit: 50 % of group = 64" in response.get_data(as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "quota"))
    assert event.changes == {"cpu_limit": {"from": 40, "to": None},
                             "cpu_percent": {"from": None, "to": 50}}


def test_saving_without_a_change_writes_no_event(ops, estate):
    assert edit(ops, estate.quota, cpu_limit=40, memory_percent=50).status_code == 200
    assert events() == 0


def test_without_javascript_the_edit_is_a_page_and_a_redirect(ops, estate):
    page = ops.get(f"/tenants/quotas/{estate.quota.id}/edit?on=tenant")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "is-editing" in html
    bad = edit(ops, estate.quota, on="tenant", headers={}, cpu_percent=101)
    assert bad.status_code == 422 and "<html" in bad.get_data(as_text=True)
    good = edit(ops, estate.quota, on="tenant", headers={}, cpu_limit=100)
    assert good.status_code == 302
    assert good.headers["Location"] == f"/tenants/{estate.acme.id}#quota-{estate.quota.id}"
    assert limits(estate.quota.id)["cpu_limit"] == 100
    page = ops.get(good.headers["Location"]).get_data(as_text=True)
    assert "CPU limit 40 → 100" in page  # flashed, and in the history panel


def test_the_tenant_page_edits_the_same_rows(ops, estate):
    html = ops.get(f"/tenants/{estate.acme.id}").get_data(as_text=True)
    assert f'hx-get="/tenants/quotas/{estate.quota.id}/edit?on=tenant"' in html
    response = edit(ops, estate.quota, on="tenant", cpu_limit=90, memory_percent=50)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "80 of 90 cores" in text
    assert f'href="/groups/{estate.grp.id}"' in text  # rows name the group on this page
    assert "group-totals" not in text
    assert 'id="tenant-history" hx-swap-oob="true"' in text and "CPU limit 40 → 90" in text


def test_add_a_quota_for_another_tenant(ops, estate):
    html = ops.get(f"/groups/{estate.grp.id}").get_data(as_text=True)
    form = html.split('class="quota-add"')[1].split("</form>")[0]
    assert ">initech<" in form and ">acme<" not in form  # only tenants without a quota here

    def add(**values):
        data = {"new-csrf_token": token(ops), **{f"new-{k}": str(v) for k, v in values.items()}}
        return ops.post(f"/groups/{estate.grp.id}/quotas", data=data)

    count = db.session.scalar(select(func.count(BaremetalGroupTenantQuota.id)))
    unknown = add(tenant_id=999999, cpu_limit=10)
    assert unknown.status_code == 422 and "Choose an existing tenant." in unknown.get_data(
        as_text=True)
    duplicate = add(tenant_id=estate.acme.id, cpu_limit=10)
    assert "acme already has a quota in group tw-north" in duplicate.get_data(as_text=True)
    both = add(tenant_id=estate.initech.id, storage_limit=10, storage_percent=10)
    assert both.status_code == 422 and "not both" in both.get_data(as_text=True)
    assert db.session.scalar(select(func.count(BaremetalGroupTenantQuota.id))) == count

    ok = add(tenant_id=estate.initech.id, cpu_percent=10)
    assert ok.status_code == 302
    quota = db.session.scalar(select(BaremetalGroupTenantQuota).where(
        BaremetalGroupTenantQuota.tenant_id == estate.initech.id))
    assert quota.cpu_percent == 10 and quota.cpu_limit is None
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "create", AuditEvent.object_type == "quota"))
    assert event.object_label == "initech in tw-north"
    assert event.changes == {"cpu_percent": {"from": None, "to": 10}}


def test_add_a_quota_from_the_tenant_page(ops, estate):
    other = f.group(name="tw-south")
    db.session.commit()
    data = {"new-csrf_token": token(ops), "new-group_id": str(other.id), "new-cpu_limit": "8"}
    assert ops.post(f"/tenants/{estate.acme.id}/quotas", data=data).status_code == 302
    data["new-group_id"] = "nope"
    bad = ops.post(f"/tenants/{estate.acme.id}/quotas", data=data)
    assert bad.status_code == 422 and "Choose an existing group." in bad.get_data(as_text=True)


def test_delete_a_quota_after_confirmation(ops, estate):
    quota_id = estate.other.id
    page = ops.get(f"/tenants/quotas/{quota_id}/delete?on=group").get_data(as_text=True)
    assert "cannot place anything in this group" in page
    response = ops.post(f"/tenants/quotas/{quota_id}/delete?on=group",
                        data={"csrf_token": token(ops)})
    assert response.status_code == 302 and response.headers["Location"] == (
        f"/groups/{estate.grp.id}")
    assert db.session.get(BaremetalGroupTenantQuota, quota_id) is None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delete"))
    assert event.changes == {"cpu_percent": {"from": 25, "to": None}}


def test_only_operators_edit(app, estate):
    for username in ("acme-admin", "watcher"):
        client = app.test_client()
        log_in(client, username, f.PASSWORD)
        assert client.get(f"/tenants/quotas/{estate.quota.id}/edit").status_code == 403
        html = client.get(f"/tenants/{estate.acme.id}").get_data(as_text=True)
        assert "/edit?on=" not in html and "Add a quota" not in html
        assert "80 of 40 cores" in html  # read, with the bar
    assert limits(estate.quota.id)["cpu_limit"] == 40


def test_the_database_still_refuses_what_the_service_refuses(app, estate):
    from sqlalchemy.exc import IntegrityError

    estate.quota.cpu_percent = 10
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
