"""The list mechanism shared by every list page."""

from __future__ import annotations

import csv
import html
import io
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Webhook
from tests import factories as f
from tests.conftest import log_in

LISTS = ["/racks/", "/servers/", "/groups/", "/tenants/", "/flavors/", "/vms/", "/clusters/",
         "/meshes/", "/maintainers/", "/webhooks/", "/audit/"]
# Pages that list rows without the list mechanism.
OTHER_LISTS = ["/maintainers/groups/"]


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


def populate(count: int) -> None:
    rack, grp, tenant, flavor = f.rack(), f.group(), f.tenant(), f.flavor()
    mesh_names = []
    for i in range(count):
        srv = f.server(rack=rack, group=grp, rack_unit=i + 1) if i < 40 else f.server(group=grp)
        vm = f.vm(tenant, srv, flavor)
        f.cluster(tenant, grp)
        f.maintainer()
        f.maintainer_group()
        db.session.add(Webhook(name=f"hook-{i}", url=f"https://hooks.example/{i}",
                               secret="s" * 32, events=["vm.created"]))
        mesh_names.append(f.mesh().name)
        f.flavor()
        f.tenant()
        from portal.audit.service import record
        record("update", "virtual_machine", vm.id, vm.name, {"status": {"from": "a", "to": "b"}})
    db.session.commit()


@pytest.fixture
def operator_client(app):
    f.user("op", operator=True)
    db.session.commit()
    client = app.test_client()
    log_in(client, "op", f.PASSWORD)
    return client


@pytest.mark.parametrize("url", LISTS + OTHER_LISTS)
def test_query_count_does_not_grow_with_rows(app, operator_client, url):
    populate(3)
    operator_client.get(url)  # warm caches
    with count_queries() as few:
        assert operator_client.get(url).status_code == 200
    populate(45)
    with count_queries() as many:
        page = operator_client.get(url + "?per_page=100")
        assert page.status_code == 200
    assert many["n"] == few["n"], f"{url}: {few['n']} queries with few rows, {many['n']} with many"


SORT_LINK = re.compile(r'href="([^"]*[?&]sort=[^"]*)"')
FILTER_SELECT = re.compile(r'<select name="(\w+)"[^>]*>(.*?)</select>', re.S)
OPTION = re.compile(r'<option value="([^"]+)"')


def views_of(client, url: str) -> list[str]:
    """Every view a list page links to: each sort, both directions, and each filter set to
    its first value (as bench/pages --variants measures them)."""
    page = client.get(url).get_data(as_text=True)
    start = page.index('id="list-filters"')
    form = page[start:page.index("</form>", start)]
    views = []
    for link in SORT_LINK.findall(page):
        link = html.unescape(link)
        views += [link, link.replace("sort=", "sort=-").replace("sort=--", "sort=")]
    for name, body in FILTER_SELECT.findall(form):
        options = OPTION.findall(body)
        if name not in ("per_page", "sort") and options:
            views.append(f"{url}?{name}={options[0]}")
    return list(dict.fromkeys(views))


@pytest.mark.parametrize("url", LISTS)
def test_no_sort_or_filter_grows_the_query_count_with_rows(app, operator_client, url):
    """Sorted and filtered views too: a sort by a related name joins, it never loads per
    row. The views are read with few rows, then counted again with 15 times as many."""
    populate(3)
    views = views_of(operator_client, url)
    assert any("sort=" in v for v in views), f"{url} offers no sort link"

    def counts():
        result = {}
        for view in views:
            operator_client.get(view)  # warm caches
            with count_queries() as counter:
                assert operator_client.get(view).status_code == 200, view
            result[view] = counter["n"]
        return result

    few = counts()
    populate(45)
    assert counts() == few


@pytest.mark.parametrize("url", LISTS)
def test_htmx_request_gets_only_the_table_fragment(app, operator_client, url):
    populate(2)
    response = operator_client.get(url + "?q=", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<div id="list-table"')
    assert response.headers["HX-Push-Url"] == url
    full = operator_client.get(url).get_data(as_text=True)
    assert "<html" in full and 'id="list-table"' in full


def test_search_filter_sort_and_paging_on_servers(app, operator_client):
    grp = f.group(name="gold")
    for i in range(30):
        f.server(name=f"web-{i:02d}", group=grp if i % 2 else None, cpu=64,
                 status="maintenance" if i % 5 == 0 else "active")
    f.server(name="db-01", cpu=8)
    db.session.commit()

    def names(url):
        html = operator_client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
        cells = [line.split("<td>")[1].split("</td>")[0]
                 for line in html.split("<tr>")[1:] if "<td>" in line]
        return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]

    assert names("/servers/?q=db-") == ["db-01"]
    assert names("/servers/?q=WEB-0&status=maintenance") == ["web-00", "web-05"]
    assert names(f"/servers/?group={grp.id}&per_page=25")[:2] == ["web-01", "web-03"]
    assert names("/servers/?sort=-name")[0] == "web-29"
    assert names("/servers/?sort=available_cpu")[0] == "db-01"
    page2 = names("/servers/?per_page=25&page=2")
    assert len(page2) == 6 and page2[0] == "web-24"
    # Out-of-range and nonsense arguments fall back to sane values instead of erroring.
    assert names("/servers/?page=999&per_page=25") == page2
    assert len(names("/servers/?per_page=abc&sort=evil;drop&status=bogus&group=x")) == 31


def test_quick_search_is_literal_and_handles_cjk(app, operator_client):
    f.tenant(name="研發中心")
    f.tenant(name="100%_real")
    f.tenant(name="plain")
    db.session.commit()
    html = operator_client.get("/tenants/?q=研發").get_data(as_text=True)
    assert "研發中心" in html and "plain" not in html
    html = operator_client.get("/tenants/?q=%25_").get_data(as_text=True)
    assert "100%_real" in html and "plain" not in html


def test_csv_export_is_exactly_the_filtered_view(app, operator_client):
    for i in range(60):
        f.server(name=f"n{i:02d}", status="offline" if i < 55 else "active")
    f.server(name="=cmd|evil", status="offline")
    db.session.commit()
    response = operator_client.get("/servers/?status=offline&sort=-name&per_page=25&format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["Name", "Serial", "Status"]
    body = rows[1:]
    assert len(body) == 56  # every matching row, not one page
    assert {r[2] for r in body} == {"offline"}
    assert body[0][0] == "n54" and body[-1][0] == "'=cmd|evil"  # formula neutralised
