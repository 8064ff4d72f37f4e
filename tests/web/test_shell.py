"""The shell and the cross-cutting pages, as a newcomer's walk found them (issue #14): the
list filter's htmx trigger, the favicon, logout without JavaScript, required fields,
dashboard links, search (maintainers, notes, no silent cap, tenant admins), times in the
site's zone, the sidebar's contrast, and models that do not import the access layer."""

from __future__ import annotations

import ast
import re
from datetime import datetime
from pathlib import Path

import pytest

from portal.audit.service import record
from portal.extensions import db
from tests import factories as f
from tests.conftest import csrf_token_from, log_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ops(app):
    f.user("ops", operator=True)
    db.session.commit()
    client = app.test_client()
    log_in(client, "ops", f.PASSWORD)
    return client


LIST_PAGES = ["/racks/", "/servers/", "/groups/", "/tenants/", "/flavors/", "/vms/",
              "/clusters/", "/meshes/", "/maintainers/", "/audit/", "/webhooks/"]


@pytest.mark.parametrize("url", LIST_PAGES)
def test_list_filter_triggers_are_valid_htmx(ops, url):
    """htmx 2 reads `from:#list-filters select` as the selector `#list-filters` followed
    by a filter it does not know (htmx:syntax:error on every list page): a selector with a
    space must be in parentheses."""
    html = ops.get(url).get_data(as_text=True)
    triggers = re.findall(r'hx-trigger="([^"]*)"', html)
    assert triggers, url
    for trigger in triggers:
        for part in trigger.split(","):
            match = re.search(r"from:(\S.*)$", part.strip())
            if match and " " in match.group(1).split(" delay:")[0]:
                assert match.group(1).startswith("("), (url, part)


def test_every_page_links_the_favicon_and_it_is_served(app, ops):
    for html in (ops.get("/").get_data(as_text=True),
                 app.test_client().get("/login").get_data(as_text=True)):
        href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', html)
        assert href, "no favicon link"
    icon = ops.get(href.group(1))
    try:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert b"<svg" in icon.get_data()
    finally:
        icon.close()


def test_logout_is_a_plain_form_post_that_needs_no_javascript(ops):
    html = ops.get("/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/logout">(.*?)</form>', html, re.S)
    assert form and 'type="submit"' in form.group(1) and "csrf_token" in form.group(1)
    answer = ops.post("/logout", data={"csrf_token": csrf_token_from(html)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    assert ops.get("/").status_code == 302  # signed out


def test_required_fields_are_marked_for_eyes_and_for_screen_readers(app):
    html = app.test_client().get("/login").get_data(as_text=True)
    username = re.search(r"<input[^>]*id=\"username\"[^>]*>", html).group(0)
    assert " required" in username and 'aria-required="true"' in username
    label = re.search(r'<label class="form-label" for="username">(.*?)</label>', html).group(1)
    assert '<span class="required-mark" aria-hidden="true">*</span>' in label
    assert '<span class="visually-hidden"> (required)</span>' in label
    remember = re.search(r"<input[^>]*id=\"remember\"[^>]*>", html).group(0)
    assert "required" not in remember  # optional fields are not marked


def test_dashboard_group_names_open_the_group_page(ops):
    group = f.group(name="tw-north-general")
    db.session.commit()
    html = ops.get("/").get_data(as_text=True)
    assert f'<a href="/groups/{group.id}">tw-north-general</a>' in html


def test_a_tenant_admins_quota_rows_open_their_tenant_and_group(app):
    acme, group = f.tenant(name="acme"), f.group(name="tw-north")
    f.quota(acme, group, cpu_limit=8)
    f.user("boss", tenants=("acme",))
    db.session.commit()
    client = app.test_client()
    log_in(client, "boss", f.PASSWORD)
    html = client.get("/").get_data(as_text=True)
    assert f'<a href="/tenants/{acme.id}">acme</a>' in html
    assert f'<a href="/groups/{group.id}">tw-north</a>' in html
    assert client.get(f"/groups/{group.id}").status_code == 200


def test_a_stored_utc_time_shows_in_taipei_time(ops):
    event = record("update", "rack", 1, "tpe1-r01", {"name": {"from": "a", "to": "b"}})
    event.created_at = datetime(2026, 3, 1, 14, 2, 5)  # stored naive UTC
    db.session.commit()
    html = ops.get("/audit/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Mar 1, 2026, 10:02:05\u202fPM" in html  # UTC+8
    assert "2:02:05" not in html
    zh = ops.get("/audit/", headers={"Accept-Language": "zh-TW"})
    assert "2026年3月1日 晚上10:02:05" in zh.get_data(as_text=True)


def test_sidebar_headings_have_at_least_4_5_to_1_contrast():
    css = (ROOT / "static/css/portal.css").read_text()
    variables = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    rule = re.search(r"\.nav-section-title\s*\{([^}]*)\}", css).group(1)
    colour = re.search(r"(?<![-\w])color:\s*([^;]+);", rule).group(1).strip()
    colour = variables[colour[4:-1]] if colour.startswith("var(") else colour
    assert contrast(colour, variables["--portal-sidebar-bg"]) >= 4.5


def contrast(a: str, b: str) -> float:
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_models_do_not_import_the_access_layer():
    """models ↔ portal.auth.access was a circle (User.role_label imported role_label):
    the models import nothing of the web or auth layers, not even inside a function."""
    for path in (ROOT / "portal/models").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("portal.auth", "portal.web", "portal.audit")), (
                    path.name, name)


# --- search ---------------------------------------------------------------------------------


def test_search_finds_maintainers_groups_and_notes(ops):
    f.maintainer(name="Chen Mei-ling", account="meiling")
    f.maintainer_group(name="dc-ops", description="handles the north hall")
    f.rack(name="tpe1-r01", network_notes="uplink via tor-north-7")
    db.session.commit()
    assert "Chen Mei-ling" in ops.get("/search/?q=meiling").get_data(as_text=True)
    html = ops.get("/search/?q=north").get_data(as_text=True)
    assert 'id="search-maintainer_group"' in html and "dc-ops" in html
    assert 'id="search-rack"' in html and "tpe1-r01" in html and "tor-north-7" in html


def test_search_never_cuts_a_kind_silently(ops):
    for i in range(59):
        f.rack(name=f"tpe1-r{i:02d}")
    db.session.commit()
    html = ops.get("/search/?q=tpe1").get_data(as_text=True)
    section = html.split('id="search-rack"')[1].split("</section>")[0]
    assert "25 of 59" in section
    assert 'href="/search/?q=tpe1&amp;type=rack"' in section
    assert section.count('class="list-group-item') == 25
    everything = ops.get("/search/?q=tpe1&type=rack").get_data(as_text=True)
    section = everything.split('id="search-rack"')[1].split("</section>")[0]
    assert section.count('class="list-group-item') == 59 and " of " not in section


def test_tenant_admins_search_their_own_objects(app):
    mine, theirs = f.tenant(name="acme"), f.tenant(name="globex")
    group = f.group(name="tw-north")
    f.quota(mine, group)
    server = f.server(group=group, rack=f.rack(name="acme-rack"))
    flavor = f.flavor()
    f.vm(mine, server, flavor, name="acme-web")
    f.vm(theirs, server, flavor, name="acme-spy")  # another tenant's, despite the name
    f.user("boss", tenants=("acme",))
    db.session.commit()
    client = app.test_client()
    log_in(client, "boss", f.PASSWORD)
    answer = client.get("/search/?q=acme")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "acme-web" in html and 'id="search-tenant"' in html
    assert "acme-spy" not in html
    assert "acme-rack" not in html and 'value="rack"' not in html  # no racks for them
    assert 'id="global-search"' in html  # the header offers them the search box
