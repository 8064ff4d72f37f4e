"""The audit trail page: useful filters, readable changes, links to the objects."""

from __future__ import annotations

import csv
import io
import re
from contextlib import contextmanager
from datetime import datetime

import pytest
from flask import g
from flask_babel import refresh
from sqlalchemy import delete

from portal.audit import presenter
from portal.audit.service import record
from portal.extensions import db
from portal.models import AuditEvent
from tests import factories as f
from tests.conftest import log_in

HX = {"HX-Request": "true"}


@pytest.fixture
def trail(app):
    ops = f.user("ops-admin", operator=True)
    other = f.user("auditor", operator=True)
    tenant = f.tenant(name="acme")
    grp = f.group(name="tw-north")
    quota = f.quota(tenant, grp, cpu_limit=64)
    db.session.execute(delete(AuditEvent))  # only the events below (not the users' creation)
    events = [
        ("2026-03-01 09:00", ops, "update", "quota", quota.id, "acme in tw-north",
         {"cpu_limit": {"from": 40, "to": 64}}),
        ("2026-03-02 10:00", other, "create", "tenant", tenant.id, "acme",
         {"name": {"from": None, "to": "acme"}}),
        ("2026-03-03 11:00", ops, "update", "baremetal_group", grp.id, "tw-north",
         {"dimension": {"from": "", "to": "geo:north"}}),
        ("2026-03-04 12:00", ops, "delete", "tenant", 999, "gone-co", {}),
    ]
    for when, user, action, kind, object_id, label, changes in events:
        event = record(action, kind, object_id, label, changes, user=user)
        event.created_at = datetime.fromisoformat(when)
    db.session.commit()
    client = app.test_client()
    log_in(client, "ops-admin", f.PASSWORD)
    db.session.execute(delete(AuditEvent).where(AuditEvent.action == "login"))  # nor the login
    db.session.commit()
    return client


def labels(client, url):
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert "<html" not in html
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td>((?:<a [^>]+>)?[^<]*(?:</a>)?)</td>\s*<td class=\"audit",
                                   html)]


@contextmanager
def reading(app, language):
    """A request in ``language``; the fixture's app context outlives one request, so the
    language chosen for the previous one is forgotten first."""
    with app.test_request_context("/", headers={"Accept-Language": language}):
        g.pop("locale_tag", None)
        refresh()
        yield
    g.pop("locale_tag", None)
    refresh()


def test_changes_read_as_sentences(app):
    event = AuditEvent(username="ops-admin", action="update", object_type="quota",
                       changes={"cpu_limit": {"from": 40, "to": 64},
                                "memory_percent": {"from": None, "to": 50}},
                       created_at=datetime(2026, 3, 1, 14, 2))
    # Stored in UTC, read in the site's zone (Asia/Taipei, UTC+8).
    with reading(app, "zh-TW"):
        assert presenter.sentence(event) == (
            "CPU 上限 40 → 64，記憶體 % 設為 50，由 ops-admin 於 2026-03-01 22:02")
    with reading(app, "en"):
        assert presenter.sentence(event) == (
            "CPU limit 40 → 64, Memory % set to 50, by user ops-admin, at 2026-03-01 22:02")
        assert presenter.change_text("is_active", {"from": True, "to": False}) == (
            "Active yes → no")
        assert presenter.change_text("storage_limit", {"from": 10, "to": None}) == (
            "Storage limit 10 → none")


def test_filters_by_type_action_user_and_dates(app, trail):
    assert labels(trail, "/audit/") == ["gone-co", "tw-north", "acme", "acme in tw-north"]
    assert labels(trail, "/audit/?object_type=tenant") == ["gone-co", "acme"]
    assert labels(trail, "/audit/?action=update") == ["tw-north", "acme in tw-north"]
    assert labels(trail, "/audit/?user=auditor") == ["acme"]
    assert labels(trail, "/audit/?from=2026-03-02&to=2026-03-03") == ["tw-north", "acme"]
    assert labels(trail, "/audit/?from=2026-03-04") == ["gone-co"]
    assert labels(trail, "/audit/?from=nonsense") == labels(trail, "/audit/")
    assert labels(trail, "/audit/?sort=created_at")[0] == "acme in tw-north"
    assert labels(trail, "/audit/?q=NORTH") == ["tw-north", "acme in tw-north"]


def test_rows_are_readable_and_link_to_their_objects(app, trail):
    html = trail.get("/audit/").get_data(as_text=True)
    assert "CPU limit 40 → 64" in html and "Dimension set to geo:north" in html
    assert re.search(r'<a href="/groups/\d+">tw-north</a>', html)
    assert re.search(r'<a href="/tenants/quotas/\d+">acme in tw-north</a>', html)
    assert "<td>gone-co</td>" in html  # deleted: nothing to link to
    assert 'name="from" form="list-filters"' in html


def test_date_range_survives_paging_and_reaches_the_csv(app, trail):
    html = trail.get("/audit/?from=2026-03-02&per_page=25", headers=HX).get_data(as_text=True)
    assert "format=csv" in html and "from=2026-03-02" in html
    table = list(csv.reader(io.StringIO(
        trail.get("/audit/?from=2026-03-02&to=2026-03-03&format=csv").get_data(as_text=True))))
    assert table[0] == ["When", "User", "Action", "Object type", "Object", "Changes"]
    assert [r[4] for r in table[1:]] == ["tw-north", "acme"]
    assert table[1][5] == "Dimension set to geo:north"


def test_only_operators_read_the_trail(app, trail):
    f.user("acme-admin", tenants=("acme",))
    db.session.commit()
    client = app.test_client()
    log_in(client, "acme-admin", f.PASSWORD)
    assert client.get("/audit/").status_code == 403
