"""An operator ticks two servers on the server list, sets them to maintenance in bulk,
confirms on the page that names them, reads the per-row result, and puts them back."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import log_in


def _bulk_status(page, names, status):
    page.goto("/servers/?status=active&per_page=25")
    for name in names:
        page.get_by_label(f"Select {name}", exact=True).check()
    page.get_by_role("button", name="Set status…").click()
    expect(page.locator("#bulk-rows")).to_contain_text(names[0])
    page.select_option("#bulk-status", status)


def test_operator_sets_the_status_of_selected_servers_in_bulk(page, shoot):
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/servers/?status=active&per_page=25")
    expect(page.locator("#bulk-form")).to_be_visible()
    checkboxes = page.locator('#list-table input[name="id"]')
    names = [
        checkboxes.nth(i).get_attribute("aria-label").removeprefix("Select ") for i in (0, 1)
    ]
    _bulk_status(page, names, "maintenance")
    # The confirmation lists exactly the ticked rows and says what will happen.
    expect(page.locator("#bulk-rows tbody tr")).to_have_count(2)
    expect(page.locator("#bulk-summary")).to_contain_text("set to the status you choose")
    shoot(page, "bulk-confirm")
    page.get_by_role("button", name="Set status: 2 servers").click()

    results = page.locator("#bulk-results tbody tr")
    expect(results).to_have_count(2)
    for name in names:
        row = results.filter(has=page.get_by_role("link", name=name, exact=True))
        expect(row).to_contain_text("done")
        expect(row).to_contain_text("active → maintenance")
    expect(page.locator("#bulk-summary")).to_contain_text("a refusal undid nothing else")
    shoot(page, "bulk-result")

    # Back to the list: they show as maintenance; the demo data is shared, so put them back.
    page.get_by_role("link", name="Back to the servers").click()
    page.goto("/servers/?status=maintenance&per_page=100")
    for name in names:
        page.get_by_label(f"Select {name}", exact=True).check()
    page.get_by_role("button", name="Set status…").click()
    page.select_option("#bulk-status", "active")
    page.get_by_role("button", name="Set status: 2 servers").click()
    expect(page.locator("#bulk-results tbody tr.bulk-done")).to_have_count(2)
