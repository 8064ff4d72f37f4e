"""The /webhooks/ pages: operators and tenant admins, 404s, CSRF forms, resend."""

from __future__ import annotations

from portal.extensions import db
from portal.models import Webhook, WebhookDelivery, utcnow
from portal.webhooks.service import deliver_due, emit
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.webhooks.helpers import Recorder, hook


def people():
    tenant, other = f.tenant(), f.tenant()
    operator = f.user(operator=True)
    admin = f.user(tenants=(tenant.name,))
    maintainer_row = f.maintainer()
    maintainer = f.user(maintainer_account=maintainer_row.account)
    db.session.commit()
    return tenant, other, operator, admin, maintainer


def post_form(client, url, data):
    token = csrf_token_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_an_operator_creates_a_hook_and_sees_its_secret_once(client):
    _, _, operator, _, _ = people()
    log_in(client, operator.username, f.PASSWORD)
    assert b'href="/webhooks/"' in client.get("/").data  # the sidebar link
    made = post_form(client, "/webhooks/new", {
        "name": "ci", "url": "http://10.0.0.9/hook", "events": ["vm.status_changed"],
        "tenant_id": "", "enabled": "y", "allow_private": "y"})
    assert made.status_code == 200, made.get_data(as_text=True)
    row = db.session.scalars(db.select(Webhook)).one()
    assert row.secret in made.get_data(as_text=True) and row.allow_private
    page = client.get(f"/webhooks/{row.id}").get_data(as_text=True)
    assert row.secret not in page and "http://10.0.0.9/hook" in page


def test_a_refused_url_shows_the_reason_and_saves_nothing(client):
    tenant, _, _, admin, _ = people()
    log_in(client, admin.username, f.PASSWORD)
    answer = post_form(client, "/webhooks/new", {
        "url": "http://169.254.169.254/", "events": ["vm.status_changed"],
        "tenant_id": str(tenant.id), "enabled": "y"})
    assert answer.status_code == 422
    assert "link-local" in answer.get_data(as_text=True)
    assert "allow_private" not in answer.get_data(as_text=True)  # operators only
    assert db.session.scalar(db.select(db.func.count(Webhook.id))) == 0


def test_tenant_admins_see_their_tenants_hooks_only(client):
    tenant, other, _, admin, maintainer = people()
    mine, theirs, everyone = hook(tenant=tenant), hook(tenant=other), hook()
    db.session.commit()
    log_in(client, admin.username, f.PASSWORD)
    listing = client.get("/webhooks/").get_data(as_text=True)
    assert f"/webhooks/{mine.id}" in listing and f"/webhooks/{theirs.id}" not in listing
    assert f"/webhooks/{everyone.id}" not in listing
    for url in (f"/webhooks/{theirs.id}", f"/webhooks/{everyone.id}/edit",
                f"/webhooks/{theirs.id}/delete"):
        assert client.get(url).status_code == 404
    other_client = client.application.test_client()
    log_in(other_client, maintainer.username, f.PASSWORD)
    assert other_client.get("/webhooks/").status_code == 403


def test_the_delivery_log_shows_response_codes_and_resends(client):
    tenant, _, operator, _, _ = people()
    row = hook(tenant=tenant)
    emit("vm.status_changed", "vm", 1, tenant.id, "provisioning", {})
    db.session.commit()
    deliver_due(utcnow(), send=Recorder(503))
    log_in(client, operator.username, f.PASSWORD)
    page = client.get(f"/webhooks/{row.id}").get_data(as_text=True)
    assert "503" in page and "Resend" in page
    delivery = db.session.scalars(db.select(WebhookDelivery)).one()
    token = csrf_token_from(page)
    assert client.post(f"/webhooks/deliveries/{delivery.id}/resend").status_code == 400  # CSRF
    done = client.post(f"/webhooks/deliveries/{delivery.id}/resend", data={"csrf_token": token})
    assert done.status_code == 302
    db.session.refresh(delivery)
    assert delivery.attempts == 0 and delivery.status == "pending"


def test_edit_and_delete(client):
    _, _, operator, _, _ = people()
    row = hook()
    db.session.commit()
    log_in(client, operator.username, f.PASSWORD)
    saved = post_form(client, f"/webhooks/{row.id}/edit", {
        "name": "renamed", "url": "http://93.184.216.34/other", "events": ["job.finished"],
        "tenant_id": ""})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    db.session.refresh(row)
    assert (row.name, row.enabled, row.events, row.secret) == (
        "renamed", False, ["job.finished"], "s3cret")
    gone = post_form(client, f"/webhooks/{row.id}/delete", {})
    assert gone.status_code == 302
    assert db.session.scalar(db.select(db.func.count(Webhook.id))) == 0


def test_the_list_searches_filters_and_exports(client):
    tenant, _, operator, _, _ = people()
    build, deploy = hook(url="http://93.184.216.34/build"), hook(tenant=tenant, enabled=False)
    build.name, deploy.name = "build-events", "deploy-events"
    db.session.commit()
    log_in(client, operator.username, f.PASSWORD)
    found = client.get("/webhooks/?q=build").get_data(as_text=True)
    assert f"/webhooks/{build.id}" in found and f"/webhooks/{deploy.id}" not in found
    disabled = client.get("/webhooks/?enabled=no").get_data(as_text=True)
    assert f"/webhooks/{deploy.id}" in disabled and f"/webhooks/{build.id}" not in disabled
    assert tenant.name in disabled
    csv = client.get("/webhooks/?format=csv")
    assert csv.mimetype == "text/csv" and "deploy-events" in csv.get_data(as_text=True)
    assert "s3cret" not in csv.get_data(as_text=True)
