"""A quota table's display row is drawn by a Python function (portal/tenants/rows.py): a
group's page draws fifty of them, and the Jinja macro cost more than the rest of the page.
Its markup is the macro's, byte for byte: quota_row_markup.json holds what the macro drew
(templates/tenants/_quotas.html before the change) for each kind of row, in English and
Traditional Chinese, and the rows drawn now through the same macro call must equal it.

Recording (only to change the markup on purpose): RECORD_QUOTA_ROWS=1 pytest this file."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from flask import render_template_string
from flask_babel import refresh

from portal.extensions import db
from portal.tenants.quotas import quota_usages
from tests import factories as f

MARKUP = Path(__file__).parent / "quota_row_markup.json"
ROW = ('{% import "tenants/_quotas.html" as quota_table %}'
       "{{ quota_table.row(u, on, editable) }}")


def _rows(app) -> list:
    """Quotas of every shape a row draws: absolute and percentage limits, none at all, a
    limit of zero, usage over the limit, with and without the user who last changed it, and
    names that need escaping."""
    grp = f.group(name="tpe1-<gpu>")
    grp.total_cpu = grp.available_cpu = 400
    grp.total_memory = grp.available_memory = 1600
    grp.total_storage = grp.available_storage = 20000
    server = f.server(group=grp, name="bm-1", cpu=400, memory=1600, storage=20000)
    editor = f.user("quota-editor", operator=True)
    spec = f.flavor(cpu=8, memory=32, storage=100)
    shapes = [
        {"cpu_limit": 64, "memory_limit": 256, "storage_limit": 4000},
        {"cpu_percent": 50, "memory_percent": 25},
        {},
        {"cpu_limit": 0, "memory_limit": 16, "storage_percent": 100},
    ]
    quotas = []
    for i, shape in enumerate(shapes):
        tenant = f.tenant(name=f"tenant-{i} & co")
        quota = f.quota(tenant, grp, **shape)
        quota.updated_at = datetime(2026, 3, 14, 5 + i, 9, 26)
        quota.updated_by_user = editor if i % 2 else None
        quotas.append(quota)
        for k in range(i + 1):  # the last tenant is over its limits
            f.vm(tenant, server, spec, name=f"vm-{i}-{k}")
    db.session.flush()
    return quota_usages(quotas)


def _draw(app, rows, lang: str) -> list[dict]:
    drawn = []
    with app.test_request_context("/", headers={"Accept-Language": lang}):
        refresh()  # the app context's locale, looked up while the rows were made
        for index, u in enumerate(rows):
            for on in ("group", "tenant"):
                for editable in (False, True):
                    html = render_template_string(ROW, u=u, on=on, editable=editable)
                    drawn.append({"row": index, "on": on, "editable": editable, "html": html})
    return drawn


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_quota_rows_draw_the_macros_markup(app, lang):
    rows = _rows(app)
    drawn = _draw(app, rows, lang)
    if os.environ.get("RECORD_QUOTA_ROWS"):
        recorded = json.loads(MARKUP.read_text(encoding="utf-8")) if MARKUP.exists() else {}
        recorded[lang] = drawn
        MARKUP.write_text(json.dumps(recorded, ensure_ascii=False, indent=1) + "\n",
                          encoding="utf-8")
    expected = json.loads(MARKUP.read_text(encoding="utf-8"))[lang]
    assert len(expected) == 16
    for got, want in zip(drawn, expected, strict=True):
        assert got == want, (got["row"], got["on"], got["editable"])


def test_values_are_escaped_and_words_translated(app):
    rows = _rows(app)
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        refresh()
        html = render_template_string(ROW, u=rows[1], on="group", editable=True)
    assert "tenant-1 &amp; co" in html and "tenant-1 & co" not in html
    assert "編輯" in html  # "Edit"
    assert "quota-editor" in html
