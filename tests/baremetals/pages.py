"""Helpers for the racks and servers page tests: logged-in clients, form posts, and a
query counter."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from portal.extensions import db
from portal.models import AuditEvent
from tests import factories as f
from tests.conftest import csrf_token_from, log_in


def client_for(app, username: str, **user_kw):
    f.user(username, **user_kw)
    db.session.commit()
    client = app.test_client()
    assert log_in(client, username, f.PASSWORD).status_code == 302
    return client


def post(client, url: str, data: dict | None = None, **kw):
    """POST with the CSRF token of the logged-in session."""
    token = csrf_token_from(client.get("/profile").get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kw)


def text(response) -> str:
    return response.get_data(as_text=True)


@contextmanager
def count_queries():
    counter = {"n": 0}

    def on_execute(*args, **kwargs):
        counter["n"] += 1

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


def events(object_type: str, object_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
        .order_by(AuditEvent.id)
    ))


def first_cells(html: str) -> list[str]:
    """The text of the first cell of each body row of a list table (names are links)."""
    import re

    rows = html.split("<tbody>", 1)[-1].split("<tr>")[1:]
    found = []
    for row in rows:
        match = re.search(r"<td>(.*?)</td>", row, re.S)
        if match:
            found.append(re.sub(r"<[^>]+>", "", match.group(1)).strip())
    return found
