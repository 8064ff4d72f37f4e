"""A tenant admin puts a VM group under a scaling policy: the group is created on its page
and built by the agent, the policy starts in dry run, the agent reports the members' load
(POST /api/v1/metrics with an operator's token) at twice the target, the controller reads
it from the metrics store, the dry run shows what it would do and the policy's chart the
load, the admin switches it to active, and the policy's timeline shows the decisions newest
first — the group has doubled through the agent. Then the group is deleted, so that the
shared demo estate is as it was."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from portal.auth import tokens
from portal.autoscaling import service
from portal.extensions import db
from portal.models import User, utcnow
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from portal.provisioning.http import HttpQueue
from portal.seed.demo import LOGINS
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


def report_load(live_app, live_server, vm_ids, cpu_util, since, minutes):
    """What an agent on another machine sends with its operator's token: each VM's sample
    once a minute (the agent's interval) from ``since`` for ``minutes``."""
    with live_app.app_context():
        operator = db.session.scalar(select(User).where(User.username == "ops-admin"))
        token = tokens.issue_token(operator, "journey-agent").secret
        db.session.commit()
    samples = [{"object_type": "vm", "object_id": vm_id,
                "ts": f"{since + timedelta(minutes=m):%Y-%m-%dT%H:%M:%SZ}",
                "values": {"cpu_util": cpu_util}}
               for m in range(minutes + 1) for vm_id in vm_ids]
    queue = HttpQueue(live_server, token)
    assert queue.report_metrics("journey-agent", "simulate", samples) == len(samples)


def test_a_policys_timeline_shows_its_decisions(page, shoot, live_app, live_server):
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
    member_ids = [int(href.rstrip("/").rsplit("/", 1)[1]) for href in page.locator(
        "#members tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")]

    page.get_by_role("link", name="Add a scaling policy").click()
    page.fill("#max", "6")
    page.fill("#target", "0.5")
    page.get_by_role("button", name="Create scaling policy").click()
    expect(page.get_by_text("Dry run: every decision is recorded below")).to_be_visible()
    policy_url = page.url
    policy_id = int(policy_url.rstrip("/").rsplit("/", 1)[1])

    # The agent reports the members at twice the target (0.5) each minute for five minutes
    # and the controller evaluates at 5.5: the members past their warm-up (300 s), the
    # newest sample 30 s old. Time runs ahead here: the API takes samples up to five minutes
    # ahead of its clock, and the chart, which ends at the real now, shows only the first.
    active = utcnow().replace(microsecond=0)
    report_load(live_app, live_server, member_ids, 1.0, active, minutes=5)
    now = active + timedelta(seconds=330)
    with live_app.app_context():
        service.evaluate_policy(policy_id, now)  # the metrics store, as the controller reads
    page.reload()
    chart = page.locator("#utilisation")
    expect(chart.locator(".chart-no-data")).to_have_count(0)
    expect(chart.locator(".metric-table tbody tr")).to_have_count(1)
    expect(chart.locator(".metric-table tbody tr")).to_contain_text("100")
    timeline = page.locator("#timeline")
    expect(timeline.locator(".decision")).to_have_count(1)
    expect(timeline.locator(".decision").first).to_contain_text("scale up: 2 → 4")
    expect(timeline.locator(".decision").first).to_contain_text("dry run")

    page.get_by_role("link", name="Edit", exact=True).click()
    page.select_option("#mode", "active")
    page.get_by_role("button", name="Save").click()
    with live_app.app_context():
        service.evaluate_policy(policy_id, now + timedelta(seconds=30))
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
