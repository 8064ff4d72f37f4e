"""The workload pages in Traditional Chinese, in a real browser: the VM list, the VM wizard
with a refusal's reason, a VM page, the cluster wizard, a cluster page and the maintainers
page, each saved as a screenshot (zh-TW-*.png, see the `shoot` fixture)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.test_vm_wizard import choose


@pytest.fixture
def zh_page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="zh-TW",
                                  viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def test_the_workload_pages_read_traditional_chinese(zh_page, shoot):
    page = zh_page
    log_in(page, "ops-admin", "ops-admin-demo")
    page.goto("/vms/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant-TW")
    expect(page.get_by_role("heading", name="虛擬機")).to_be_visible()
    shoot(page, "zh-TW-vm-list")

    page.goto("/vms/new")
    expect(page.get_by_role("heading", name="申請虛擬機")).to_be_visible()
    page.select_option("#tenant_id", label="acme")
    choose(page, "#group_id", "tw-north-general")
    choose(page, "#spec_id", "Standard-4C8G")
    page.fill("#name", "shop-api")
    preview = page.locator("#placement-preview")
    expect(preview).to_contain_text("可部署")
    page.fill("#count", "50")
    page.locator("#count").dispatch_event("change")
    expect(preview.locator("#preview-refusal")).to_contain_text("配額不足")
    shoot(page, "zh-TW-vm-wizard-refused")

    page.goto("/vms/")
    page.locator("table tbody a[href^='/vms/']").first.click()
    expect(page.locator("#vm-status")).to_contain_text("租戶")
    shoot(page, "zh-TW-vm-page")

    page.goto("/clusters/new")
    expect(page.get_by_role("heading", name="申請 Kubernetes 叢集")).to_be_visible()
    page.select_option("#tenant_id", label="acme")
    choose(page, "#group_id", "tw-north-general")
    page.fill("#name", "shop-zh")
    choose(page, "#control_plane_flavor_id", "Standard-4C8G")
    choose(page, "#worker_flavor_id", "Standard-4C8G")
    expect(page.locator("#cluster-preview")).to_contain_text("可部署")
    shoot(page, "zh-TW-cluster-wizard")

    page.goto("/clusters/")
    page.locator("table tbody a[href^='/clusters/']").first.click()
    expect(page.locator("#cluster-live")).to_contain_text("控制平面")
    shoot(page, "zh-TW-cluster-page")

    page.goto("/maintainers/")
    expect(page.get_by_role("heading", name="維護者")).to_be_visible()
    shoot(page, "zh-TW-maintainers")
    page.goto("/maintainers/groups/")
    expect(page.get_by_role("heading", name="維護者群組")).to_be_visible()
    shoot(page, "zh-TW-maintainer-groups")
