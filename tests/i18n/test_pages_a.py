"""Area a (the shell and the cross-cutting pages) in Traditional Chinese: no English
interface text is left on any of its pages — dashboard, search, audit trail, profile and
tokens, bulk confirmation and result, login, the error pages, the API reference — as an
operator, a tenant admin and a maintainer, with bad input and 404s included; and the same
pages in English still read English (a broken catalog fails one way or the other)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from portal.audit.service import record
from portal.extensions import db
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.i18n.leaks import crawl, data_strings, english_left

OPERATOR, TENANT_ADMIN, MAINTAINER = "ops-lin", "acme-admin", "oncall"


@pytest.fixture
def estate(app):
    """A small estate like the demo's: a rack, a group, servers, a tenant with quota, VMs,
    a cluster, a mesh, maintainers, and audit events that refer to objects by id."""
    rack = f.rack(name="tpe1-r01", network_notes="uplink tor-a")
    other_rack = f.rack(name="tpe1-r02")
    group = f.group(name="tw-north-general", dimension="geo:north",
                    description="general purpose")
    server = f.server(rack=rack, group=group, name="tpe1-r01-s01")
    f.server(rack=other_rack, group=group, name="tpe1-r02-s01", status="maintenance")
    acme = f.tenant(name="acme", description="platform team")
    f.quota(acme, group, cpu_limit=64, memory_limit=256)
    flavor = f.flavor(name="std-4c8g")
    f.vm(acme, server, flavor, name="acme-web-1")
    f.vm(acme, server, flavor, name="acme-web-2", status="error")
    f.cluster(acme, group, name="acme-k8s")
    f.mesh(name="mesh-north")
    person = f.maintainer(name="Chen Mei-ling", account="oncall")
    f.maintainer_group(name="dc-ops", description="datacenter operations")
    ops = f.user(OPERATOR, operator=True, display_name="Lin")
    f.user(TENANT_ADMIN, tenants=("acme",), display_name="Acme admin")
    f.user(MAINTAINER, maintainer_account=person.account, display_name="Chen")
    # The trail: a server moved to another rack, a quota edit, a deleted tenant.
    record("update", "baremetal", server.id, server.name,
           {"rack_id": {"from": other_rack.id, "to": rack.id},
            "status": {"from": "maintenance", "to": "active"}}, user=ops)
    record("update", "quota", 1, "acme in tw-north-general",
           {"cpu_limit": {"from": 40, "to": 64}, "memory_percent": {"from": None, "to": 50}},
           user=ops)
    record("delete", "tenant", 999, "gone-co", {"name": {"from": "gone-co", "to": None}},
           user=ops)
    db.session.commit()
    return SimpleNamespace(server=server, rack=rack, other_rack=other_rack, group=group)


def client_for(app, username, language):
    client = app.test_client()
    client.set_cookie("portal_locale", language)
    assert log_in(client, username, f.PASSWORD).status_code == 302
    return client


def pages_of(client, estate, role, language):
    """(what, response) for every page of area a this role reaches."""
    get = client.get
    yield "dashboard", get("/")
    yield "search", get("/search/?q=tpe1")
    yield "search-none", get("/search/?q=zzz-nothing")
    yield "search-acme", get("/search/?q=acme")
    yield "profile", get("/profile")
    html = get("/profile").get_data(as_text=True)
    yield "password-bad", client.post("/profile/password", data={
        "csrf_token": csrf_token_from(html), "current": "wrong", "new": "short",
        "confirm": "other"})
    yield "token-bad", client.post("/profile", data={
        "csrf_token": csrf_token_from(html), "name": "", "scope": "read", "days": "999"})
    yield "404", get("/racks/999999" if role != TENANT_ADMIN else "/vms/999999")
    if role == OPERATOR:
        yield "search-servers", get("/search/?q=tpe1&type=baremetal")
        for url, page in crawl(client, "/audit/", within=("/audit",), limit=40):
            yield f"audit {url}", SimpleNamespace(status_code=200,
                                                  get_data=lambda as_text, p=page: p)
        yield "audit-filtered", get("/audit/?object_type=baremetal&action=update")
        yield "audit-empty", get("/audit/?from=2001-01-01&to=2001-01-02")
        confirm = client.post("/bulk/servers?", data={
            "csrf_token": csrf_token_from(html), "action": "status",
            "id": [str(estate.server.id), "999998"]})
        yield "bulk-confirm", confirm
        token = csrf_token_from(confirm.get_data(as_text=True))
        yield "bulk-bad-params", client.post(
            "/bulk/servers/status", data={"csrf_token": token, "id": str(estate.server.id),
                                          "status": "nonsense"})
        yield "bulk-result", client.post(
            "/bulk/servers/status", data={"csrf_token": token, "id": [str(estate.server.id),
                                                                      "999998"],
                                          "status": "maintenance"})
        yield "bulk-assign", client.post("/bulk/servers?", data={
            "csrf_token": token, "action": "assign", "id": str(estate.server.id)})
        yield "400", client.post("/bulk/servers?", data={
            "csrf_token": token, "action": "status", "id": "x"})
        # Under /api/ the language is Accept-Language's alone (SPEC 8.3), not the cookie's.
        yield "api-docs", get("/api/v1/docs", headers={"Accept-Language": language})
        limit = client.application.config["MAX_CONTENT_LENGTH"]
        too_large = client.post("/profile", data={"name": "x" * (limit + 1)})
        assert too_large.status_code == 413
        yield "413", too_large
    else:
        yield "403", get("/audit/")


ROLES = [OPERATOR, TENANT_ADMIN, MAINTAINER]


@pytest.mark.parametrize("role", ROLES)
def test_no_english_left_in_zh_tw(app, estate, role):
    language = "zh-TW"
    client = client_for(app, role, language)
    data = data_strings()
    leaks = {}
    for what, response in pages_of(client, estate, role, language):
        html = response.get_data(as_text=True)
        assert '<html lang="zh-Hant-TW">' in html, what
        left = english_left(html, data)
        if left:
            leaks[what] = left
    assert leaks == {}


def test_login_and_its_refusal_in_zh_tw(app, estate):
    client = app.test_client()
    client.set_cookie("portal_locale", "zh-TW")
    page = client.get("/login").get_data(as_text=True)
    assert english_left(page, data_strings()) == []
    refused = client.post("/login", data={"csrf_token": csrf_token_from(page),
                                          "username": OPERATOR, "password": "wrong"})
    assert refused.status_code == 401
    html = refused.get_data(as_text=True)
    assert "帳號或密碼錯誤" in html
    assert english_left(html, data_strings()) == []
    log_in(client, OPERATOR, f.PASSWORD)
    logout = client.post("/logout", data={"csrf_token": csrf_token_from(
        client.get("/").get_data(as_text=True))}, follow_redirects=True)
    assert "您已登出" in logout.get_data(as_text=True)


@pytest.mark.parametrize("role", ROLES)
def test_the_same_pages_in_english_read_english(app, estate, role):
    language = "en"
    client = client_for(app, role, language)
    data = data_strings()
    for what, response in pages_of(client, estate, role, language):
        html = response.get_data(as_text=True)
        assert '<html lang="en">' in html, what
        assert len(english_left(html, data)) > 5, what  # interface words, untranslated


def test_audit_ids_read_as_linked_names_in_one_query(app, estate):
    from sqlalchemy import event

    client = client_for(app, OPERATOR, "zh-TW")
    html = client.get("/audit/").get_data(as_text=True)
    rack_link = f'<a href="/racks/{estate.rack.id}">tpe1-r01</a>'
    other_link = f'<a href="/racks/{estate.other_rack.id}">tpe1-r02</a>'
    assert f"機架 {other_link} → {rack_link}" in html
    assert "狀態 維護中 → 運作中" in html
    # More events referring to more racks cost no more queries.
    statements = []

    def count(*args):
        statements.append(args[2])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get("/audit/")
        before = len(statements)
        for i in range(8):
            extra = f.rack(name=f"extra-{i}")
            record("update", "baremetal", estate.server.id, estate.server.name,
                   {"rack_id": {"from": extra.id, "to": estate.rack.id}})
        db.session.commit()
        statements.clear()
        html = client.get("/audit/").get_data(as_text=True)
        assert "extra-7</a>" in html
        assert len(statements) == before
    finally:
        event.remove(engine, "before_cursor_execute", count)


ZH = {"Accept-Language": "zh-TW"}


def test_generic_api_problems_follow_accept_language_and_keep_their_codes(app):
    from tests.api.conftest import token_for

    operator = f.user("api-ops", operator=True)
    tenant_admin = f.user("api-admin", tenants=(f.tenant(name="acme").name,))
    db.session.commit()
    token, weak = token_for(operator), token_for(tenant_admin)
    client = app.test_client()
    cases = [
        (client.get("/api/v1/vms", headers=ZH), 401, "unauthorized", "請以"),
        (client.get("/api/v1/vms", headers={**ZH, "Authorization": "Bearer nope"}), 401,
         "unauthorized", "權杖不存在"),
        (client.get("/api/v1/no-such-thing", headers={**ZH, "Authorization": f"Bearer {token}"}),
         404, "not_found", "沒有 API 資源"),
        (client.post("/api/v1/tenants", data="{not json", content_type="application/json",
                     headers={**ZH, "Authorization": f"Bearer {token}"}), 422,
         "validation_error", "不是有效的 JSON"),
        (client.get("/api/v1/audit-events", headers={**ZH, "Authorization": f"Bearer {weak}"}),
         403, "forbidden", "只有維運人員可以執行此操作"),
        (client.get("/api/v1/audit-events/999999",
                    headers={**ZH, "Authorization": f"Bearer {token}"}), 404, "not_found",
         "沒有這個物件"),
    ]
    for answer, status, code, words in cases:
        body = answer.get_json()
        assert (answer.status_code, body["code"]) == (status, code), body
        assert words in body["detail"], body
        # Header names stay as HTTP spells them.
        text = (f"<p>{body['title']}</p><p>{body['detail']}</p>"
                .replace("Authorization", "").replace("/api/v1/no-such-thing", ""))
        assert english_left(text) == [], body
    english = client.get("/api/v1/no-such-thing", headers={"Authorization": f"Bearer {token}"})
    assert english.get_json()["detail"] == "No API resource at /api/v1/no-such-thing."
