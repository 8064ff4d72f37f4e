"""Each demo role logs in and lands somewhere sensible; lists filter and sort in place."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.seed.demo import LOGINS
from tests.e2e.conftest import log_in

PASSWORDS = {user: pw for user, pw, _ in LOGINS}


def test_login_page_and_bad_password(page, shoot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.fill("#username", "ops-admin")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_text("Wrong username or password")).to_be_visible()
    shoot(page, "login-refused")


def test_operator_sees_the_estate(page, shoot):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Utilisation per group")).to_be_visible()
    expect(page.get_by_text("tw-north-general").first).to_be_visible()
    nav = page.locator("#portal-sidebar")
    for label in ("Racks", "Servers", "Groups", "Tenants", "Flavors", "VMs", "Clusters",
                  "Service meshes", "Maintainers", "Audit log"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    shoot(page, "dashboard-operator")


def test_tenant_admin_sees_only_their_tenants(page, shoot):
    log_in(page, "acme-admin", PASSWORDS["acme-admin"])
    expect(page.get_by_text("Your quotas")).to_be_visible()
    expect(page.locator("#portal-sidebar").get_by_role("link", name="Racks")).to_have_count(0)
    shoot(page, "dashboard-tenant-admin")
    page.goto("/vms/")
    rows = page.locator("#list-table tbody tr")
    expect(rows.first).to_be_visible()
    # The tenant column, after the selection checkbox (tenant admins may delete in bulk).
    tenants = set(rows.locator("td:nth-child(3)").all_inner_texts())
    assert tenants <= {"acme", "研發中心"}, tenants
    shoot(page, "vms-tenant-admin")


def test_maintainer_lands_on_dashboard_and_sees_assignments(page, shoot):
    log_in(page, "oncall", PASSWORDS["oncall"])
    link = page.locator("#portal-sidebar").get_by_role("link", name=re.compile("My assignments"))
    expect(link).to_be_visible()
    shoot(page, "dashboard-maintainer")
    link.click()
    expect(page.get_by_text("through group Platform SRE").first).to_be_visible()
    expect(page.get_by_role("cell", name="acme-prod")).to_be_visible()
    shoot(page, "my-assignments")


def test_server_list_filters_and_sorts_without_reload(page, shoot):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto("/servers/")
    page.evaluate("window.__marker = 'same page'")
    page.fill("#list-q", "khh1-c2")
    expect(page).to_have_url(re.compile(r"q=khh1-c2"))
    names = page.locator("#list-table tbody tr td:nth-child(2)")  # after the checkbox
    expect(names.first).to_contain_text("khh1-c2")
    assert all("khh1-c2" in n for n in names.all_inner_texts())
    page.locator("#list-table th a", has_text="Free CPU").click()
    expect(page).to_have_url(re.compile(r"sort=available_cpu"))
    page.select_option("select[name=status]", "active")
    expect(page).to_have_url(re.compile(r"status=active"))
    assert page.evaluate("window.__marker") == "same page"  # swapped in place, never reloaded
    shoot(page, "servers-filtered")
    # The pushed URL reproduces the view on its own.
    url = page.url
    page.goto(url)
    assert all("khh1-c2" in n for n in names.all_inner_texts())


@pytest.mark.parametrize("path", ["/racks/", "/groups/", "/tenants/", "/flavors/", "/clusters/",
                                  "/meshes/", "/maintainers/", "/audit/", "/search/?q=tpe1"])
def test_operator_pages_render(page, shoot, path):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto(path)
    expect(page.locator("h1.page-title")).to_be_visible()
    shoot(page, "page" + path.replace("/", "-").replace("?", "-").replace("=", "-"))
