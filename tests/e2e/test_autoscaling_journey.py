"""A tenant admin puts a VM group under a scaling policy: the group is created on its page
and built by the agent, the policy starts in dry run, the measured load (fed through the
autoscaler's observation seam, as the agents' samples would arrive) is twice the target,
the dry run shows what it would do, the admin switches it to active, and the policy's
timeline shows the decisions newest first — the group has doubled through the agent.
Then the group is deleted, so that the shared demo estate is as it was."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.autoscaling import service
from portal.models import utcnow
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from portal.seed.demo import LOGINS
from tests.autoscaling.conftest import Samples
from tests.e2e.conftest import log_in

PASSWORDS = {user: pw for user, pw, _ in LOGINS}


def choose(page, select, starting):
    """Pick the option whose label starts with ``starting`` (labels carry what is left)."""
    option = page.locator(f"{select} option").filter(has_text=re.compile(f"^{starting}"))
    page.select_option(select, option.first.get_attribute("value"))


def build(page, live_app, url):
    """The reference agent finishes the queued jobs (here, in the test: a session-wide
    inline agent started this early would race the later journeys' SQLite writes)."""
    agent = Agent(DatabaseQueue(live_app), SimulateDriver(delay=0), name="journey-agent")
    while agent.run_once():
        pass
    page.goto(url)
    expect(page.get_by_text("provisioning", exact=True)).to_have_count(0)


def test_a_policys_timeline_shows_its_decisions(page, shoot, live_app):
    log_in(page, "acme-admin", PASSWORDS["acme-admin"])
    page.goto("/vm-groups/")
    page.get_by_role("link", name="New VM group").click()
    choose(page, "#group_id", "tw-south-general")
    choose(page, "#spec_id", "Standard-4C8G")
    page.fill("#name", "shop-web")
    page.fill("#size", "2")
    page.get_by_role("button", name="Create VM group").click()
    expect(page.get_by_role("heading", name="VM group shop-web")).to_be_visible()
    group_url = page.url
    build(page, live_app, group_url)
    expect(page.locator("#members tbody tr")).to_have_count(2)

    page.get_by_role("link", name="Add a scaling policy").click()
    page.fill("#max", "6")
    page.fill("#target", "0.5")
    page.get_by_role("button", name="Create scaling policy").click()
    expect(page.get_by_text("Dry run: every decision is recorded below")).to_be_visible()
    policy_url = page.url
    policy_id = int(policy_url.rstrip("/").rsplit("/", 1)[1])

    # The members report twice the target (0.5); the controller evaluates.
    now = utcnow() + timedelta(seconds=400)  # the members are past their warm-up
    with live_app.app_context():
        service.evaluate_policy(policy_id, now, Samples(1.0))
    page.reload()
    timeline = page.locator("#timeline")
    expect(timeline.locator(".decision")).to_have_count(1)
    expect(timeline.locator(".decision").first).to_contain_text("scale up: 2 → 4")
    expect(timeline.locator(".decision").first).to_contain_text("dry run")

    page.get_by_role("link", name="Edit", exact=True).click()
    page.select_option("#mode", "active")
    page.get_by_role("button", name="Save").click()
    with live_app.app_context():
        service.evaluate_policy(policy_id, now + timedelta(seconds=30), Samples(1.0))
    page.reload()
    newest = timeline.locator(".decision").first
    expect(timeline.locator(".decision")).to_have_count(2)
    expect(newest).to_contain_text("done")
    expect(newest).to_contain_text("scale up: 2 → 4")
    expect(newest).to_contain_text("2 × 1 / 0.5 → 4")
    expect(newest).to_contain_text("jobs:")
    newest.locator("summary").click()
    expect(newest.locator("details tbody tr")).to_have_count(2)
    shoot(page, "autoscaling-policy-timeline")

    build(page, live_app, group_url)
    expect(page.locator("#members tbody tr")).to_have_count(4)
    shoot(page, "vm-group-after-scale-up")

    # The demo data is shared with the other journeys: give the capacity back.
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete the group and its members").click()
    build(page, live_app, group_url)
    expect(page.locator("#members tbody tr")).to_have_text("No members.")
