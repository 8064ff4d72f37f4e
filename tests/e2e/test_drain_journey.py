"""An operator drains a rack before maintenance: the plan first, then the evacuation, the
migrations followed on the rack page until the agent has moved every VM, then the rack goes
back into service."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.seed.demo import LOGINS
from tests.e2e.conftest import log_in

PASSWORDS = {user: pw for user, pw, _ in LOGINS}
RACK = "khh1-r02"  # three active VMs, room for them elsewhere in their group


def test_operator_drains_a_rack_and_returns_it_to_service(page, shoot, live_agent):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto("/racks/")
    page.locator("#list-table").get_by_role("link", name=RACK, exact=True).click()
    expect(page.get_by_role("heading", name=RACK)).to_be_visible()
    rack_url = page.url

    page.get_by_role("link", name="Drain", exact=True).click()
    expect(page).to_have_url(re.compile(r"/racks/\d+/drain$"))
    moves = page.locator("table").filter(has_text="From").first
    expect(moves.locator("tbody tr")).to_have_count(3)
    shoot(page, "rack-drain-preview")

    page.get_by_role("button", name=re.compile(r"^Evacuate")).click()
    expect(page).to_have_url(rack_url)
    expect(page.get_by_text("migrating").first).to_be_visible()
    shoot(page, "rack-draining")

    # The in-process agent (1 s per job) moves them; the page shows it on reload.
    for _ in range(30):
        page.reload()
        if page.get_by_text("migrating", exact=True).count() == 0:
            break
        page.wait_for_timeout(1000)
    expect(page.get_by_text("migrating", exact=True)).to_have_count(0)
    shoot(page, "rack-drained")

    page.get_by_role("button", name="Return to service").click()
    expect(page).to_have_url(rack_url)
    expect(page.locator(".alert, .flash, [role=alert]").first).to_be_visible()
    shoot(page, "rack-returned")
