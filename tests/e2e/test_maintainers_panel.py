"""An operator assigns a maintainer group to a server in place; the panel updates without
a reload. A server in maintenance shows who to call, inherited from its rack."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in


def test_operator_assigns_a_group_to_a_server_in_place(page, shoot):
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/servers/?status=maintenance")
    page.locator("#list-table tbody tr td a").first.click()
    expect(page).to_have_url(re.compile(r"/servers/\d+$"))
    call = page.locator(".who-to-call")
    expect(call).to_be_visible()
    expect(call).to_contain_text("inherited from rack")
    page.evaluate("window.__marker = 'same page'")
    panel = page.locator(".maintainers-panel")
    panel.get_by_placeholder("Type a name, account or group").fill("Platform")
    option = panel.get_by_label("Group Platform SRE")
    expect(option).to_be_visible()
    option.check()
    panel.get_by_placeholder("Responsibility").fill("hardware escalation")
    panel.get_by_role("button", name="Assign").click()
    expect(panel.get_by_text("Group Platform SRE")).to_be_visible()
    expect(panel).to_contain_text("hardware escalation")
    assert page.evaluate("window.__marker") == "same page"
    panel.locator("summary", has_text="Group Platform SRE").click()
    expect(panel.get_by_text("manager").first).to_be_visible()
    shoot(page, "server-maintainers-panel")
    # A second time is refused, in the panel.
    panel.get_by_placeholder("Type a name, account or group").fill("Platform")
    panel.get_by_label("Group Platform SRE").check()
    panel.get_by_role("button", name="Assign").click()
    expect(panel.get_by_role("alert")).to_contain_text("already assigned")
