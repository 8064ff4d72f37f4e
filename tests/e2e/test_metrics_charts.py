"""The utilisation charts and the dashboard's hot spots in a real browser, on the demo
estate's simulated history, in English and in Traditional Chinese: drawn, under the CSP,
with working range links; a screenshot of each."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import Baremetal, K8sCluster, VirtualMachine
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import violations, watch_violations


@pytest.fixture(scope="module")
def chart_pages(live_app):
    with live_app.app_context():
        vm = db.session.scalars(select(VirtualMachine).where(
            VirtualMachine.status == "active", VirtualMachine.baremetal_id.is_not(None))
            .order_by(VirtualMachine.id)).first()
        server = db.session.get(Baremetal, vm.baremetal_id)
        cluster = db.session.scalars(select(K8sCluster).where(K8sCluster.status == "active")
                                     .order_by(K8sCluster.id)).first()
        return {
            "server": f"/servers/{server.id}",
            "vm": f"/vms/{vm.id}",
            "cluster": f"/clusters/{cluster.id}",
            "group": f"/groups/{server.group_id}",
            "rack": f"/racks/{server.rack_id}",
        }


@pytest.mark.parametrize("language", ["en", "zh-TW"])
def test_each_chart_page_and_the_dashboard(page, live_server, chart_pages, shoot, language):
    page.context.add_cookies([{"name": "portal_locale", "value": language, "url": live_server}])
    seen = watch_violations(page)
    log_in(page, "ops-admin", "ops-admin-demo")
    for name, url in chart_pages.items():
        page.goto(url)
        panel = page.locator("#utilisation")
        expect(panel).to_be_visible()
        charts = panel.locator("svg[role=img]")
        assert charts.count() >= 3, name
        # Simulated history: each page draws a measured line, not "no data".
        assert panel.locator("path.chart-measured").count() >= 1, name
        label = charts.first.get_attribute("aria-label")
        assert ("latest" in label) if language == "en" else ("最新" in label), (name, label)
        panel.scroll_into_view_if_needed()
        shoot(page, f"metrics-{name}-{language}")
        assert violations(page, seen) == [], name

    # The range links are plain links: 7 days, then the table of figures opens.
    page.goto(chart_pages["server"])
    page.locator('#utilisation a[data-range="7d"]').click()
    page.wait_for_load_state("networkidle")
    assert "range=7d" in page.url
    expect(page.locator('#utilisation a[data-range="7d"]')).to_have_attribute(
        "aria-current", "true")
    page.locator("#utilisation details summary").first.click()
    expect(page.locator("#utilisation details table").first).to_be_visible()
    shoot(page, f"metrics-server-7d-{language}")

    page.goto("/")
    expect(page.locator("#hot-spots")).to_be_visible()
    shoot(page, f"metrics-dashboard-{language}")
    assert violations(page, seen) == []
