"""The dashboard's hot spots: servers above 85 % measured CPU, servers using more memory
than was allocated, clusters with pending pods and agents gone silent — each linked, the
worst ten and a count, in a bounded number of statements."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.metrics import presence, store
from portal.models.base import utcnow
from tests import factories as f
from tests.baremetals.pages import client_for, count_queries, text


def sample(object_type, object_id, minutes_ago=1, **values):
    return {"object_type": object_type, "object_id": object_id,
            "ts": utcnow() - timedelta(minutes=minutes_ago), **values}


@pytest.fixture
def app(any_app):
    """Every test here on SQLite and on PostgreSQL (the store compares in SQL)."""
    return any_app


@pytest.fixture
def estate(app):
    g = f.group(name="grp-h")
    t = f.tenant(name="acme-h")
    f.quota(t, g)
    hottest = f.server(group=g, name="srv-hottest", memory=256)
    hot = f.server(group=g, name="srv-hot", memory=256)
    calm = f.server(group=g, name="srv-calm", memory=256)
    stale = f.server(group=g, name="srv-was-hot", memory=256)
    f.vm(t, calm, f.flavor(cpu=8, memory=32, storage=100), name="vm-h")  # 32 GiB allocated
    busy = f.cluster(t, g, name="k8s-busy")
    idle = f.cluster(t, g, name="k8s-idle")
    other = f.cluster(f.tenant(name="other-h"), g, name="k8s-other")
    db.session.flush()
    store.write([
        # Nothing allocated, the host's own 8 GiB reserve used: not over.
        sample("baremetal", hottest.id, cpu_util=0.97, memory_used_gib=8),
        sample("baremetal", hot.id, cpu_util=0.9, memory_used_gib=0),
        # Uses 48 GiB where its VMs were given 32 (and the host keeps 8 for itself).
        sample("baremetal", calm.id, cpu_util=0.5, memory_used_gib=48),
        # Hot an hour ago: not now.
        sample("baremetal", stale.id, minutes_ago=60, cpu_util=0.99),
        sample("cluster", busy.id, pods_pending=4),
        sample("cluster", idle.id, pods_pending=0),
        sample("cluster", other.id, pods_pending=2),
    ])
    presence.touch("agent-gone", utcnow() - timedelta(hours=2))
    presence.touch("agent-here", utcnow())
    db.session.commit()
    return {"hottest": hottest.id, "hot": hot.id, "calm": calm.id, "busy": busy.id,
            "other": other.id, "group": g, "tenant": t}


@pytest.fixture
def ops(app):
    return client_for(app, "ops-h", operator=True)


def section(html: str, ident: str) -> str:
    return html.split(f'id="{ident}"', 1)[1].split("</ul>", 1)[0]


def names(part: str) -> list[str]:
    return re.findall(r'<a href="[^"]+">([^<]+)</a>', part)


def test_the_dashboard_lists_hot_spots_linked_to_their_objects(ops, estate):
    html = text(ops.get("/"))
    hot = section(html, "hot-servers")
    assert names(hot) == ["srv-hottest", "srv-hot"]
    assert f'href="/servers/{estate["hottest"]}"' in hot and "97 %" in hot
    over = section(html, "over-allocated")
    assert names(over) == ["srv-calm"]
    assert "48 of 32 GiB" in over
    pending = section(html, "pending-clusters")
    assert names(pending) == ["k8s-busy", "k8s-other"]
    assert f'href="/clusters/{estate["busy"]}"' in pending and "4 pending" in pending
    agents = section(html, "stale-agents")
    assert "agent-gone" in agents and "agent-here" not in agents


def test_each_list_shows_ten_and_counts_the_rest_in_the_same_statements(ops, estate):
    ops.get("/")
    with count_queries() as few:
        ops.get("/")
    rows = []
    for i in range(12):
        s = f.server(group=estate["group"], name=f"srv-many-{i:02}")
        rows.append(sample("baremetal", s.id, cpu_util=0.86 + i / 1000))
    store.write(rows)
    db.session.commit()
    with count_queries() as many:
        html = text(ops.get("/"))
    hot = section(html, "hot-servers")
    assert len(names(hot)) == 10
    assert names(hot)[:2] == ["srv-hottest", "srv-hot"]
    assert "and 4 more" in hot
    assert re.search(r"Servers above 85 % CPU <span[^>]*>14</span>", html)
    assert many["n"] == few["n"]


def test_hot_spots_count_each_metrics_fresh_value_of_the_portals_objects(ops, estate, app):
    """Each metric's own freshness, a reserve with a fraction, and nothing listed for a
    server the portal no longer has or a deleted cluster."""
    g, t = estate["group"], estate["tenant"]
    below = f.server(group=g, name="srv-below-reserve", memory=256)  # nothing allocated
    above = f.server(group=g, name="srv-above-reserve", memory=256)
    frozen = f.server(group=g, name="srv-fresh-cpu", memory=256)
    gone = f.cluster(t, g, name="k8s-gone")
    gone.status = "deleted"
    db.session.flush()
    store.write([
        sample("baremetal", below.id, memory_used_gib=8.4),
        sample("baremetal", above.id, memory_used_gib=8.6),
        sample("baremetal", frozen.id, cpu_util=0.95),
        sample("baremetal", frozen.id, minutes_ago=30, memory_used_gib=200),  # not now
        sample("baremetal", 10**6, cpu_util=0.99, memory_used_gib=500),  # no such server
        sample("cluster", gone.id, pods_pending=9),
    ])
    db.session.commit()
    reserve = app.config["PORTAL_HOST_RESERVED_MEMORY_GIB"]
    app.config["PORTAL_HOST_RESERVED_MEMORY_GIB"] = 8.5
    try:
        html = text(ops.get("/"))
    finally:
        app.config["PORTAL_HOST_RESERVED_MEMORY_GIB"] = reserve
    assert names(section(html, "hot-servers")) == ["srv-hottest", "srv-fresh-cpu", "srv-hot"]
    assert names(section(html, "over-allocated")) == ["srv-calm", "srv-above-reserve"]
    assert names(section(html, "pending-clusters")) == ["k8s-busy", "k8s-other"]


def test_a_tenant_admin_sees_the_pending_pods_of_their_clusters_only(app, estate):
    client = client_for(app, "acme-admin-h", tenants=(estate["tenant"].name,))
    html = text(client.get("/"))
    assert names(section(html, "pending-clusters")) == ["k8s-busy"]
    assert 'id="hot-servers"' not in html and 'id="stale-agents"' not in html


def test_an_unreachable_source_is_no_data_not_an_all_clear(ops, estate, app):
    from tests.metrics.prometheus_server import free_port

    app.config["PORTAL_PROMETHEUS_URL"] = f"http://127.0.0.1:{free_port()}"
    try:
        html = text(ops.get("/"))
    finally:
        app.config["PORTAL_PROMETHEUS_URL"] = None
    assert "No data: Prometheus at http://127.0.0.1:" in html
    assert "srv-hottest" not in html
    assert ">None<" not in section(html, "hot-servers")
