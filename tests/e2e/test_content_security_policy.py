"""The portal works under its Content-Security-Policy: the browser blocks nothing on the
pages, htmx swaps, the wizard's live preview and the API docs."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.test_vm_wizard import choose


def watch_violations(page) -> list[str]:
    seen: list[str] = []
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.on("console", lambda m: "Content Security Policy" in m.text and seen.append(m.text))
    return seen


def violations(page, seen: list[str]) -> list[str]:
    return seen + page.evaluate("window.__csp || []")


def test_pages_htmx_and_the_wizard_run_under_the_csp(page):
    seen = watch_violations(page)
    log_in(page, "ops-admin", "ops-admin-demo")
    for url in ("/", "/racks/", "/baremetals/", "/audit/", "/profile", "/api/v1/docs"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert violations(page, seen) == [], url

    # An htmx table refresh.
    page.goto("/racks/")
    page.fill("#list-q", "r0")
    page.wait_for_load_state("networkidle")
    # The user menu (Bootstrap's dropdown).
    page.locator(".portal-user-toggle").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert violations(page, seen) == []


def test_the_wizard_preview_follows_the_form_without_eval(page):
    seen = watch_violations(page)
    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto("/vms/new")
    page.select_option("#tenant_id", label="acme")
    choose(page, "#group_id", "tw-north-general")
    choose(page, "#spec_id", "Standard-4C8G")
    page.fill("#name", "csp-check")
    preview = page.locator("#placement-preview")
    expect(preview.locator("#quota-impact")).to_contain_text("+ 4 of 256 cores")
    choose(page, "#spec_id", "Compute-16C32G")
    expect(preview.locator("#quota-impact")).to_contain_text("+ 16 of 256 cores")
    assert violations(page, seen) == []
