"""A tenant admin asks for a 3 + 3 cluster with Calico and Istio, watches it become active,
and scales it to 5 workers."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.test_vm_wizard import choose


def test_create_watch_and_scale_a_cluster(page, shoot, live_agent):
    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto("/clusters/")
    page.get_by_role("link", name="New cluster").click()
    page.select_option("#tenant_id", label="acme")
    choose(page, "#group_id", "tw-north-general")
    expect(page.locator("#control_plane_flavor_id")).to_be_visible()
    page.fill("#name", "shop")
    page.select_option("#control_planes", value="3")
    choose(page, "#control_plane_flavor_id", "Standard-4C8G")
    page.fill("#workers", "3")
    choose(page, "#worker_flavor_id", "Standard-4C8G")
    page.check("#plugin-calico")
    choose(page, "#primary_mesh_id", "istio-prod")
    preview = page.locator("#cluster-preview")
    expect(preview).to_contain_text("Fits: all 6 VMs")
    expect(preview.locator("#cluster-spread")).to_contain_text("3 control planes on 3 racks")
    expect(preview.locator("#plan-worker tbody tr")).to_have_count(3)
    shoot(page, "cluster-wizard-plan")

    page.get_by_role("button", name="Create cluster").click()
    expect(page).to_have_url(re.compile(r"/clusters/\d+$"))
    expect(page.locator("#cluster-live").get_by_text("provisioning").first).to_be_visible()
    shoot(page, "cluster-provisioning")
    expect(page.locator("#cluster-live table.kv-table [data-status]").first).to_have_attribute(
        "data-status", "active", timeout=30000
    )
    expect(page.locator("#plugins")).to_contain_text("calico")
    expect(page.locator("#meshes")).to_contain_text("istio-prod")
    shoot(page, "cluster-active")

    page.fill("#scale-workers", "5")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("#nodes-worker tbody tr")).to_have_count(5)
    expect(page.locator("#nodes-worker [data-status='provisioning']")).to_have_count(
        0, timeout=30000
    )
    expect(page.locator("#nodes-worker [data-status='active']")).to_have_count(5)
    shoot(page, "cluster-scaled")


def test_the_plan_shows_why_a_request_is_invalid_while_it_is_filled_in(page):
    """Two network plugins, the same mesh twice: the reasons show live (issue 14)."""
    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto("/clusters/new")
    page.select_option("#tenant_id", label="acme")
    choose(page, "#group_id", "tw-north-general")
    page.fill("#name", "lab")
    choose(page, "#control_plane_flavor_id", "Standard-4C8G")
    choose(page, "#worker_flavor_id", "Standard-4C8G")
    preview = page.locator("#cluster-preview")
    page.uncheck("#plugin-calico") if page.is_checked("#plugin-calico") else None
    page.check("#plugin-calico")
    page.check("#plugin-cilium")
    expect(preview.locator("#preview-invalid")).to_contain_text("One network plugin per cluster")
    page.uncheck("#plugin-cilium")
    expect(preview.locator("#preview-invalid")).to_have_count(0)
    choose(page, "#primary_mesh_id", "istio-prod")
    choose(page, "#secondary_mesh_id", "istio-prod")
    expect(preview.locator("#preview-invalid")).to_contain_text(
        "The secondary mesh must differ from the primary.")
    page.select_option("#secondary_mesh_id", value="")
    expect(preview).to_contain_text("Fits: all")
