"""Deleted VMs stay out of every count and list a page shows unless the reader asks for
them (issue 14: "Deleted VMs fill lists and counts by default"): the dashboard, the tenant
list and page, the group, server, rack, flavor and cluster pages, the search. Each page
here holds two live VMs and four deleted ones (one a node of the cluster): a deleted VM
back in a count turns a 2 into a 6, or a 1 node into 2."""

from __future__ import annotations

import re
from html import unescape
from types import SimpleNamespace

import pytest

from portal.extensions import db
from tests import factories as f
from tests.conftest import log_in

GONE = ("web-gone-0", "web-gone-1", "web-gone-2", "node-gone")


@pytest.fixture
def estate(app):
    base = f.acme_on_one_server()
    tenant, grp, server, flavor = base.tenant, base.grp, base.server, base.flavor
    cluster = f.cluster(tenant, grp, name="kube")
    f.vm(tenant, server, flavor, name="web-1")
    f.vm(tenant, server, flavor, name="node-live", k8s_cluster_id=cluster.id, role="worker")
    for i in range(3):
        f.vm(tenant, server, flavor, name=f"web-gone-{i}", status="deleted")
    f.vm(tenant, server, flavor, name="node-gone", k8s_cluster_id=cluster.id, role="worker",
         status="deleted")
    db.session.commit()
    return SimpleNamespace(**vars(base), cluster=cluster)


def _client(app, username):
    client = app.test_client()
    assert log_in(client, username, f.PASSWORD).status_code == 302
    return client


def words(html: str) -> str:
    """The page's text as a reader sees it: no tags, one space between words."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", text))).strip()


def page(client, url) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, url
    return answer.get_data(as_text=True)


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end, text.index(start))]


def test_the_dashboard_counts_live_vms_and_links_the_deleted_ones(app, estate):
    for username in ("ops", "admin"):
        html = page(_client(app, username), "/")
        text = words(html)
        assert between(text, "Virtual machines by status", "Clusters by status") == (
            "Virtual machines by status active 2 Deleted VMs ")
        assert 'href="/vms/?status=deleted"' in html


@pytest.mark.parametrize(("url", "says"), [
    ("/tenants/", "acme 2 1 8 16"),  # VMs, clusters, CPU and memory in use
    ("/tenants/{tenant}", "VMs 2 Clusters 1"),
    ("/tenants/{tenant}", "Virtual machines 2 Name"),
    ("/servers/{server}", "Virtual machines 2 2 holding resources"),
    ("/racks/{rack}", "1 tenant, 2 VMs, 1 cluster Tenant VMs CPU Memory (GiB) acme 2 8 16"),
    ("/racks/{rack}", "kube acme active 1 0"),  # the cluster's nodes here
    ("/groups/{group}", "CPU 8 / 64 cores"),
    ("/clusters/{cluster}", "Workers 1 Node"),
    ("/flavors/{flavor}", "Live VMs placed with it 2"),
])
def test_pages_count_and_list_live_vms_only(app, estate, url, says):
    e = estate
    url = url.format(tenant=e.tenant.id, server=e.server.id, rack=e.rack.id,
                     group=e.grp.id, cluster=e.cluster.id, flavor=e.flavor.id)
    html = page(_client(app, "ops"), url)
    assert says in words(html)
    assert not [name for name in GONE if f">{name}<" in html]


def test_search_leaves_deleted_vms_out_unless_asked(app, estate):
    for username in ("ops", "admin"):
        client = _client(app, username)
        text = words(page(client, "/search/?q=web"))
        assert "VMs 1 web-1 active" in text and "gone" not in text
        shown = words(page(client, "/search/?q=web&deleted=shown"))
        assert "VMs 4 web-1 active web-gone-0 deleted" in shown
        assert "Nothing matches" in words(page(client, "/search/?q=gone"))
