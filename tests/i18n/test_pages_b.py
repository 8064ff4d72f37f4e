"""Area b (inventory) in Traditional Chinese: racks, servers (with CSV import and drain),
groups, tenants and quotas, flavors. Every page — list, detail, new, edit, confirm-delete,
a form posted with bad input, a 404 — shows no English interface text in zh-TW (data
aside), as an operator and as a tenant admin; and the same pages in English show no
Chinese (so a translation that leaks into English, or a page that lost its English, fails
too)."""

import re

import pytest

from portal.baremetals.service import IMPORT_COLUMNS
from portal.extensions import db
from portal.models import BAREMETAL_STATUSES
from tests import factories
from tests.conftest import csrf_token_from, log_in
from tests.i18n.leaks import crawl, data_strings, english_left

ZH = {"Accept-Language": "zh-TW"}
EN = {"Accept-Language": "en"}
# The language switch names each language in its own script.
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
SWITCH = {"繁體中文"}
AREA = ("/racks", "/servers", "/groups", "/tenants", "/flavors")
@pytest.fixture
def estate(app):
    """A small demo-like estate: a rack with servers of two groups, tenants with quotas,
    VMs of two flavors, a cluster."""
    rack = factories.rack(name="tpe1-r01", region="tw-north", dc="tpe1", location="Room 3",
                          bgp_asn=65001, network_notes="ToR tpe1-r01-tor")
    north = factories.group(name="tw-north-general", dimension="geo:tw-north",
                            description="General purpose")
    gpu = factories.group(name="tw-north-gpu", dimension="load:gpu")
    servers = [factories.server(rack, north, name=f"tpe1-r01-s0{i}", rack_unit=1 + 2 * i,
                                size_u=2, region="tw-north", dc="tpe1") for i in range(3)]
    factories.server(rack, gpu, name="tpe1-r01-g01", rack_unit=20, size_u=4,
                     region="tw-north", dc="tpe1", status="maintenance")
    acme = factories.tenant(name="acme", contact="ops@acme.example", description="Acme Corp")
    globex = factories.tenant(name="globex")
    quota = factories.quota(acme, north, cpu_limit=64, memory_limit=256)
    factories.quota(globex, gpu)
    small = factories.flavor(name="Standard-4C8G", cpu=4, memory=8, storage=80,
                             description="General purpose")
    factories.flavor(name="Retired-2C4G", cpu=2, memory=4, storage=40, is_active=False)
    for i in range(3):
        factories.vm(acme, servers[i % 2], small, name=f"acme-web-{i}")
    cluster = factories.cluster(acme, north, name="acme-k8s")
    factories.vm(acme, servers[2], small, name="acme-k8s-cp-1", cluster=cluster,
                 role="control-plane")
    factories.user("ops", operator=True)
    factories.user("acme-admin", tenants=("acme",))
    db.session.commit()
    return {"rack": rack, "server": servers[0], "group": north, "tenant": acme,
            "quota": quota, "flavor": small}


def pages(e) -> list[str]:
    r, s, g, t, q, f = (e[k].id for k in ("rack", "server", "group", "tenant", "quota",
                                            "flavor"))
    return [
        "/racks/", f"/racks/{r}", "/racks/new", f"/racks/{r}/edit", f"/racks/{r}/delete",
        f"/racks/{r}/drain",
        "/servers/", f"/servers/{s}", "/servers/new", f"/servers/{s}/edit",
        f"/servers/{s}/delete", f"/servers/{s}/drain", "/servers/import",
        "/groups/", f"/groups/{g}", "/groups/new", f"/groups/{g}/edit", f"/groups/{g}/delete",
        "/tenants/", f"/tenants/{t}", "/tenants/new", f"/tenants/{t}/edit",
        f"/tenants/{t}/delete", f"/tenants/quotas/{q}?on=group",
        f"/tenants/quotas/{q}/edit?on=tenant", f"/tenants/quotas/{q}/delete?on=group",
        "/flavors/", f"/flavors/{f}", "/flavors/new", f"/flavors/{f}/edit",
    ]


# A form posted with bad input (each refused with its reasons) on every new / edit form.
BAD_POSTS = [
    ("/racks/new", {"name": "", "region": "", "dc": "", "height_u": "99", "bgp_asn": "-1"}),
    ("/servers/new", {"name": "", "serial": "", "total_cpu": "-1", "rack_unit": "0"}),
    ("/servers/import", {"text": "name,serial,status,total_cpu\nok-1,SN 1,sleeping,x\nx\n"}),
    ("/groups/new", {"name": ""}),
    ("/tenants/new", {"name": ""}),
    ("/flavors/new", {"name": "", "cpu": "0", "memory": "x"}),
]
MISSING = ["/racks/999999", "/servers/999999", "/groups/999999", "/tenants/999999",
           "/flavors/999999", "/tenants/quotas/999999"]


def client_as(app, username, headers):
    client = app.test_client()
    assert log_in(client, username, factories.PASSWORD).status_code == 302
    client.environ_base.update({"HTTP_ACCEPT_LANGUAGE": headers["Accept-Language"]})
    return client


def visit(client, e, *, bad=True):
    """(url, status, html) of every page of the area, bad posts and 404s included."""
    for url in pages(e):
        answer = client.get(url)
        yield url, answer.status_code, answer.get_data(as_text=True)
    if bad:
        for url, data in BAD_POSTS:
            token = csrf_token_from(client.get(url).get_data(as_text=True))
            answer = client.post(url, data={**data, "csrf_token": token})
            yield "POST " + url, answer.status_code, answer.get_data(as_text=True)
        for url, form, data, status in refused(e):
            token = csrf_token_from(client.get(form).get_data(as_text=True))
            answer = client.post(url, data={**data, "csrf_token": token})
            assert answer.status_code == status, url
            yield "POST " + url, answer.status_code, answer.get_data(as_text=True)
    for url in MISSING:
        answer = client.get(url)
        yield url, answer.status_code, answer.get_data(as_text=True)


def refused(e):
    """Posts the services refuse, shown on their page: (url, page with the form, data,
    status). A rack and a server that still hold something cannot be deleted; a quota with
    a limit and a percentage for one dimension is refused in its row."""
    r, s, g, q = (e[k].id for k in ("rack", "server", "group", "quota"))
    return [
        (f"/racks/{r}/delete", f"/racks/{r}/delete", {}, 409),
        (f"/servers/{s}/delete", f"/servers/{s}/delete", {}, 409),
        (f"/tenants/quotas/{q}/edit?on=group", f"/tenants/quotas/{q}/edit?on=group",
         {f"q{q}-cpu_limit": "8", f"q{q}-cpu_percent": "10"}, 422),
        (f"/groups/{g}/quotas", f"/groups/{g}", {"new-tenant_id": str(e["tenant"].id),
                                                 "new-cpu_limit": "-1"}, 422),
    ]


# The CSV import's column names, status values and encoding: the file format's own words
# (like `best_fit`), which its refusals quote as they are in every language.
IMPORT_WORDS = {c for c in IMPORT_COLUMNS if "_" in c} | set(BAREMETAL_STATUSES) | {"UTF-8"}


def left(url: str, html: str, data: set[str]) -> list[str]:
    return english_left(html, data | IMPORT_WORDS if "/import" in url else data)


def leaks(found):
    return {url: sorted(set(words)) for url, words in found if words}


def test_every_page_of_the_area_is_chinese_in_zh_tw_as_an_operator(app, estate):
    client = client_as(app, "ops", ZH)
    data = data_strings()
    found, statuses = [], {}
    for url, status, html in visit(client, estate):
        statuses[url] = status
        found.append((url, left(url, html, data)))
    for url, html in crawl(client, "/racks/", within=AREA, limit=120):
        found.append((url, left(url, html, data)))
    assert leaks(found) == {}
    # The pages are the real ones, not error pages that happen to be translated.
    assert {u: s for u, s in statuses.items() if s != 200 and not u.startswith("POST")
            and "999999" not in u} == {}
    assert all(statuses[f"POST {u}"] == 422 for u, _ in BAD_POSTS)
    assert all(statuses[u] == 404 for u in MISSING)


def test_a_tenant_admins_pages_are_chinese_too(app, estate):
    client = client_as(app, "acme-admin", ZH)
    data = data_strings()
    group, tenant, quota = estate["group"], estate["tenant"], estate["quota"]
    found = []
    for url in ["/groups/", f"/groups/{group.id}", f"/tenants/{tenant.id}", "/flavors/",
                f"/flavors/{estate['flavor'].id}", f"/tenants/quotas/{quota.id}?on=tenant"]:
        answer = client.get(url)
        assert answer.status_code == 200, url
        found.append((url, left(url, answer.get_data(as_text=True), data)))
    for url, html in crawl(client, "/groups/", within=AREA, limit=60):
        found.append((url, left(url, html, data)))
    assert leaks(found) == {}


def test_the_same_pages_in_english_have_no_chinese(app, estate):
    client = client_as(app, "ops", EN)
    chinese = {}
    for url, _status, html in visit(client, estate):
        words = set(CJK.findall(html)) - SWITCH
        if words:
            chinese[url] = sorted(words)
    assert chinese == {}
    # And they are the pages we think: English words a zh-TW reader must not see.
    rack = client.get(f"/racks/{estate['rack'].id}").get_data(as_text=True)
    assert "Elevation" in rack and "Blast radius" in rack
