"""An operator finds a rack, reads its elevation and blast radius, and follows a server."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.seed.demo import LOGINS
from tests.e2e.conftest import log_in

PASSWORDS = {user: pw for user, pw, _ in LOGINS}


def test_operator_browses_a_rack_elevation_and_follows_a_server(page, shoot):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto("/racks/")
    page.select_option("#list-filters select[name=dc]", "tpe1")
    table = page.locator("#list-table")
    expect(page).to_have_url(re.compile(r"/racks/\?dc=tpe1$"))
    expect(table).to_contain_text("tpe1-r01")
    expect(table).not_to_contain_text("khh1-")
    table.get_by_role("link", name="Units used").click()
    expect(page).to_have_url(re.compile(r"sort=units_used"))
    expect(table.locator("th[aria-sort=ascending]")).to_contain_text("Units used")
    page.wait_for_load_state("networkidle")
    shoot(page, "racks-list")

    table.get_by_role("link", name="tpe1-r01", exact=True).click()
    expect(page.get_by_role("heading", name="tpe1-r01")).to_be_visible()
    elevation = page.locator("#rack-elevation")
    expect(elevation.locator("tr.elev-row")).to_have_count(42)
    expect(elevation.locator("tr.elev-row").first).to_have_attribute("data-unit", "42")
    servers = elevation.locator("td.elev-server")
    assert servers.count() >= 5
    expect(elevation.locator("td.elev-empty").first).to_be_visible()
    expect(page.locator("#rack-totals")).to_contain_text("CPU allocated")
    expect(page.locator("#rack-network")).to_contain_text("BGP peers")
    expect(page.locator("#blast-radius")).to_contain_text(re.compile(r"\d+ tenants?, \d+ VMs?"))
    shoot(page, "rack-elevation")

    # Follow a server that hosts VMs: the one of the first VM in the blast radius.
    name = page.locator("#blast-vms tbody tr").first.locator("td").nth(2).inner_text()
    server = elevation.locator(f'td.elev-server[data-server="{name}"]')
    expect(server).to_have_attribute("data-status", re.compile(r"\w+"))
    server.get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(r"/servers/\d+$"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("#server-capacity")).to_contain_text("cores")
    expect(page.locator("#server-vms tbody tr").first.locator("a").first).to_be_visible()
    expect(page.locator("#status-form")).to_be_visible()
    shoot(page, "server-detail")

    page.locator("#server-facts").get_by_role("link", name="tpe1-r01").click()
    expect(page.get_by_role("heading", name="tpe1-r01")).to_be_visible()


def test_operator_is_told_every_bad_line_of_an_import(page, shoot):
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto("/servers/")
    page.get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import servers")).to_be_visible()
    page.fill("#text", "\n".join([
        "name,serial,rack,rack_unit,size_u,group,total_cpu,total_memory,total_storage",
        "台北-new-01,SN-E2E-1,tpe1-r01,30,2,tw-north-general,32,128,1000",
        "台北-new-02,SN-E2E-2,tpe1-r01,31,1,tw-north-general,32,128,1000",
        "台北-new-03,SN-E2E-3,nowhere,1,1,,32,128,1000",
    ]))
    page.get_by_role("button", name="Check and import").click()
    problems = page.locator("#import-problems")
    expect(problems).to_contain_text("Nothing was imported: 2 problems")
    expect(problems).to_contain_text("line 3: Unit 31 of rack tpe1-r01 is taken by "
                                     "台北-new-01 on line 2 (U30–U31).")
    expect(problems).to_contain_text("line 4: there is no rack named nowhere.")
    shoot(page, "import-refused")
    page.goto("/servers/?q=SN-E2E")
    expect(page.locator("#list-table")).to_contain_text("No results")
