"""An operator edits a tenant's quota in place on a group's page: a bad value is refused in
the row, a good one swaps the row back and the group's totals follow without a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in


def test_operator_edits_a_quota_in_place_and_sees_the_totals_change(page, shoot):
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/groups/")
    page.get_by_role("link", name="tw-north-general").click()
    expect(page.get_by_role("heading", name="tw-north-general")).to_be_visible()
    row = page.locator("tr.quota-row", has=page.get_by_role("link", name="globex"))
    row_id = row.get_attribute("id")
    row = page.locator(f"#{row_id}")
    cpu_total = page.locator('#group-totals [data-dimension="cpu"] .commitment-figure')
    before = cpu_total.inner_text()
    shoot(page, "group-quotas")
    page.evaluate("window.__marker = 'no reload'")

    row.get_by_role("link", name="Edit").click()
    expect(row).to_have_class(re.compile("is-editing"))
    limit, percent = row.locator('input[name$="-cpu_limit"]'), row.locator(
        'input[name$="-cpu_percent"]')
    expect(percent).to_have_value("25")

    # Both an absolute limit and a percentage: refused in the row, nothing saved.
    limit.fill("64")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".invalid-feedback")).to_contain_text("not both")
    expect(row).to_have_class(re.compile("is-editing"))
    shoot(page, "quota-edit-error")

    # A limit below what globex already uses: saved, with a plain warning.
    percent.fill("")
    limit.fill("8")
    row.get_by_role("button", name="Save").click()
    expect(row).not_to_have_class(re.compile("is-editing"))
    expect(row.locator('[data-dimension="cpu"]')).to_contain_text("of 8 cores")
    expect(row.locator('[data-dimension="cpu"]')).to_contain_text("over by")
    expect(page.locator("#flash-oob")).to_contain_text("CPU limit set to 8, CPU % 25 → none")
    expect(page.locator("#flash-oob")).to_contain_text(
        "the new limit 8 stops new VMs but keeps the existing ones")
    expect(cpu_total).not_to_have_text(before)
    assert page.evaluate("window.__marker") == "no reload"
    shoot(page, "quota-edit-saved")

    # The history panel on a fresh load tells who changed what.
    page.reload()
    expect(page.locator(".history-panel")).to_contain_text(
        "CPU limit set to 8, CPU % 25 → none, by user ops-admin")

    # Put it back (the demo data is shared with the other journeys).
    row = page.locator(f"#{row_id}")
    row.get_by_role("link", name="Edit").click()
    row.locator('input[name$="-cpu_limit"]').fill("")
    row.locator('input[name$="-cpu_percent"]').fill("25")
    row.get_by_role("button", name="Save").click()
    expect(row.locator('[data-dimension="cpu"]')).to_contain_text("25 % of group")
    expect(cpu_total).to_have_text(before)


def test_tenant_flavor_mesh_and_audit_pages_read_well(page, shoot):
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/tenants/?sort=-cpu")
    expect(page.locator("#list-table tbody tr").first).to_contain_text("acme")
    shoot(page, "tenants-list")
    page.get_by_role("link", name="acme", exact=True).click()
    expect(page.locator("#quotas")).to_contain_text("tw-north-general")
    shoot(page, "tenant-detail")
    page.goto("/flavors/")
    page.get_by_role("link", name="Standard-4C8G").click()
    expect(page.get_by_text("never changes existing VMs")).to_be_visible()
    shoot(page, "flavor-detail")
    page.goto("/meshes/")
    page.locator("#list-table tbody a").first.click()
    expect(page.locator("#mesh-clusters")).to_be_visible()
    shoot(page, "mesh-detail")
    page.goto("/audit/?object_type=quota")
    expect(page.locator("#list-table")).to_contain_text("globex in tw-north-general")
    shoot(page, "audit-quota-events")


def test_the_inline_quota_editor_takes_the_focus_and_gives_it_back(page):
    """Keyboard users: opening the editor moves the focus into it, a refused save puts it
    on the field to fix, and closing it (Cancel or Save) returns it to the row's Edit."""
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/groups/")
    page.get_by_role("link", name="tw-north-general").click()
    row_id = page.locator("tr.quota-row", has=page.get_by_role("link", name="globex")
                          ).get_attribute("id")
    row = page.locator(f"#{row_id}")
    focused = "() => document.activeElement && (document.activeElement.name || " \
              "document.activeElement.textContent.trim())"

    row.get_by_role("link", name="Edit").focus()
    page.keyboard.press("Enter")
    expect(row).to_have_class(re.compile("is-editing"))
    page.wait_for_function("() => document.activeElement.tagName === 'INPUT'")
    assert page.evaluate(focused).endswith("-cpu_limit")

    page.keyboard.type("64")  # with the 25 % already there: refused, both set
    row.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(row.locator(".invalid-feedback")).to_contain_text("not both")
    page.wait_for_function("() => document.activeElement.getAttribute('aria-invalid')")
    assert page.evaluate(focused).endswith("-cpu_limit")

    row.get_by_role("link", name="Cancel").focus()
    page.keyboard.press("Enter")
    expect(row).not_to_have_class(re.compile("is-editing"))
    page.wait_for_function("() => document.activeElement.tagName === 'A'")
    assert page.evaluate(focused) == "Edit"
    assert page.evaluate("() => document.activeElement.closest('tr').id") == row_id
