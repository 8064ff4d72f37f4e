"""The utilisation charts on the server, VM, cluster, group and rack pages, from samples in
the embedded store: drawn, summarised, ranged, "no data" when there is none or the source
is down, and a constant number of statements however many servers a group holds."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.metrics import store
from portal.models.base import utcnow
from tests import factories as f
from tests.baremetals.pages import client_for, count_queries, text


def samples(object_type, object_id, minutes, **values):
    """A sample every 5 minutes over the last ``minutes``."""
    now = utcnow().replace(second=0, microsecond=0)
    return [{"object_type": object_type, "object_id": object_id,
             "ts": now - timedelta(minutes=m), **values} for m in range(0, minutes, 5)]


@pytest.fixture
def app(any_app):
    """Every test here on SQLite and on PostgreSQL (the aggregate is dialect-specific)."""
    return any_app


@pytest.fixture
def estate(app):
    rack = f.rack(name="rack-m")
    group = f.group(name="grp-m")
    hot = f.server(rack=rack, group=group, name="srv-hot", cpu=64, memory=256, storage=2000)
    cool = f.server(rack=rack, group=group, name="srv-cool", cpu=64, memory=256, storage=2000,
                    rack_unit=3)
    tenant = f.tenant(name="acme-m")
    f.quota(tenant, group)
    spec = f.flavor(cpu=16, memory=64, storage=200)
    vm = f.vm(tenant, hot, spec, name="vm-m")
    cluster = f.cluster(tenant, group, name="k8s-m")
    f.vm(tenant, cool, spec, name="k8s-m-node-1", cluster=cluster, role="worker")
    db.session.flush()
    store.write(
        samples("baremetal", hot.id, 120, cpu_util=0.9, memory_used_gib=100,
                storage_used_gib=500)
        + samples("baremetal", cool.id, 120, cpu_util=0.3, memory_used_gib=20,
                  storage_used_gib=300)
        + samples("vm", vm.id, 120, cpu_util=0.5, memory_used_gib=32, storage_used_gib=50)
        + samples("cluster", cluster.id, 120, nodes_ready=1, nodes_total=1, pods_pending=3,
                  cpu_requested=6, memory_requested_gib=20)
    )
    db.session.commit()
    return {"rack": rack.id, "group": group.id, "hot": hot.id, "cool": cool.id, "vm": vm.id,
            "cluster": cluster.id, "tenant": tenant, "spec": spec}


@pytest.fixture
def ops(app):
    return client_for(app, "ops-m", operator=True)


def pages(estate):
    return {
        "server": f"/servers/{estate['hot']}",
        "vm": f"/vms/{estate['vm']}",
        "cluster": f"/clusters/{estate['cluster']}",
        "group": f"/groups/{estate['group']}",
        "rack": f"/racks/{estate['rack']}",
    }


def labels(html: str) -> dict[str, str]:
    """metric key → the aria-label of its chart."""
    found = {}
    for figure in re.findall(r'<figure class="metric-chart" data-metric="([^"]+)">(.*?)</figure>',
                             html, re.S):
        key, body = figure
        found[key] = re.search(r'role="img" aria-label="([^"]+)"', body).group(1)
    return found


EXPECTED = {
    "server": {"cpu_util": "CPU: latest 90 %, mean 90 %, maximum 90 %; allocated 25 %",
               "memory_used_gib": "Memory: latest 100 GiB, mean 100 GiB, maximum 100 GiB; "
                                  "allocated 64 GiB; capacity 256 GiB"},
    "vm": {"cpu_util": "CPU: latest 50 %, mean 50 %, maximum 50 %; capacity 100 %",
           "memory_used_gib": "Memory: latest 32 GiB, mean 32 GiB, maximum 32 GiB; "
                              "allocated 64 GiB"},
    "cluster": {"pods_pending": "Pending pods: latest 3 pods, mean 3 pods, maximum 3 pods",
                "cpu_requested": "CPU requested: latest 6 cores, mean 6 cores, maximum 6 cores; "
                                 "allocated 16 cores",
                "nodes_ready": "Nodes ready: latest 1 nodes, mean 1 nodes, maximum 1 nodes; "
                               "capacity 1 nodes"},
    # Two servers: CPU averaged, memory and storage summed, against the summed allocation.
    "group": {"cpu_util": "CPU: latest 60 %, mean 60 %, maximum 60 %; allocated 25 %",
              "memory_used_gib": "Memory: latest 120 GiB, mean 120 GiB, maximum 120 GiB; "
                                 "allocated 128 GiB; capacity 512 GiB",
              "storage_used_gib": "Storage: latest 800 GiB, mean 800 GiB, maximum 800 GiB; "
                                  "allocated 400 GiB; capacity 4,000 GiB"},
    "rack": {"cpu_util": "CPU: latest 60 %, mean 60 %, maximum 60 %; allocated 25 %",
             "memory_used_gib": "Memory: latest 120 GiB, mean 120 GiB, maximum 120 GiB; "
                                "allocated 128 GiB; capacity 512 GiB"},
}


@pytest.mark.parametrize("page", list(EXPECTED))
def test_each_page_charts_measured_use_beside_allocation(ops, estate, page):
    response = ops.get(pages(estate)[page])
    assert response.status_code == 200
    html = text(response)
    assert 'id="utilisation"' in html
    found = labels(html)
    for metric, label in EXPECTED[page].items():
        assert found[metric] == label, (page, metric)
    assert 'class="chart-measured"' in html
    assert "<details" in html and "<table" in html.split('id="utilisation"', 1)[1]
    # No inline style: the CSP would block it.
    assert 'style="' not in html.split('id="utilisation"', 1)[1].split("</section>", 1)[0]


@pytest.mark.parametrize("page", list(EXPECTED))
def test_ranges_are_links_and_the_chosen_one_is_marked(ops, estate, page):
    url = pages(estate)[page]
    html = text(ops.get(url))
    for key in ("1h", "24h", "7d", "30d"):
        assert f'href="{url}?range={key}#utilisation"' in html
    assert re.search(r'active" href="[^"]+range=24h#utilisation" aria-current="true"', html)
    html = text(ops.get(f"{url}?range=1h"))
    assert re.search(r'active" href="[^"]+range=1h#utilisation" aria-current="true"', html)
    # An unknown range is the default one.
    html = text(ops.get(f"{url}?range=1y"))
    assert re.search(r'active" href="[^"]+range=24h#utilisation" aria-current="true"', html)


def test_the_range_decides_the_window(ops, estate):
    # Samples two hours old are outside the last hour, inside the last day.
    old = samples("baremetal", estate["cool"], 180, cpu_util=0.1)
    store.write([s for s in old if s["ts"] < utcnow() - timedelta(minutes=125)])
    db.session.commit()
    url = f"/servers/{estate['cool']}"
    assert labels(text(ops.get(url + "?range=1h")))["cpu_util"].startswith(
        "CPU: latest 30 %, mean 30 %, maximum 30 %")
    assert not labels(text(ops.get(url + "?range=24h")))["cpu_util"].startswith(
        "CPU: latest 30 %, mean 30 %")


def test_the_30_day_range_reads_the_rollups(ops, estate):
    now = utcnow()
    store.rollup_range("15m", store.floor_bucket(now - timedelta(hours=3)),
                       store.floor_bucket(now) + store.BUCKET)
    db.session.commit()
    found = labels(text(ops.get(f"/servers/{estate['hot']}?range=30d")))
    assert found["cpu_util"].startswith("CPU: latest 90 %, mean 90 %, maximum 90 %")


def test_a_server_without_samples_shows_no_data_not_zero(ops, estate, app):
    quiet = f.server(name="srv-quiet")
    db.session.commit()
    html = text(ops.get(f"/servers/{quiet.id}"))
    found = labels(html)
    assert found["cpu_util"] == "CPU: No data: nothing was reported in this period."
    assert "latest 0" not in html and 'class="chart-measured"' not in html


def test_an_unreachable_source_shows_no_data_with_the_reason(ops, estate, app):
    from tests.metrics.prometheus_server import free_port

    app.config["PORTAL_PROMETHEUS_URL"] = f"http://127.0.0.1:{free_port()}"
    try:
        for page, url in pages(estate).items():
            html = text(ops.get(url))
            assert "No data: Prometheus at http://127.0.0.1:" in html, page
            assert "unreachable" in html
            assert 'class="chart-measured"' not in html and "latest 0" not in html, page
    finally:
        app.config["PORTAL_PROMETHEUS_URL"] = None


@pytest.mark.parametrize("page", ["group", "rack"])
def test_group_and_rack_charts_take_the_same_statements_for_many_servers(ops, estate, page):
    url = pages(estate)[page]
    ops.get(url)
    with count_queries() as few:
        assert ops.get(url).status_code == 200
    group = db.session.get(f.BaremetalGroup, estate["group"])
    rack = db.session.get(f.Rack, estate["rack"])
    rows = []
    for i in range(20):
        s = f.server(rack=rack, group=group, name=f"srv-many-{i}", rack_unit=10 + i)
        rows += samples("baremetal", s.id, 60, cpu_util=0.6, memory_used_gib=10,
                        storage_used_gib=10)
    store.write(rows)
    db.session.commit()
    with count_queries() as many:
        html = text(ops.get(url))
    assert "grp-m" in html or "rack-m" in html
    # The group and rack pages list their servers (their own queries are pinned
    # elsewhere); the charts add none per server.
    assert many["n"] == few["n"]


def test_a_tenant_admin_sees_the_charts_of_their_vm_and_cluster_but_not_the_group(
        app, estate):
    client = client_for(app, "acme-admin-m", tenants=(estate["tenant"].name,))
    assert 'id="utilisation"' in text(client.get(f"/vms/{estate['vm']}"))
    assert 'id="utilisation"' in text(client.get(f"/clusters/{estate['cluster']}"))
    response = client.get(f"/groups/{estate['group']}")
    assert response.status_code == 200
    assert 'id="utilisation"' not in text(response)


def test_group_charts_beyond_six_hours_read_rollups_and_the_raw_tail(ops, estate):
    """7 days: the 15-minute rollups up to the controller's mark, raw samples after it."""
    from portal.models import MetricRollup, metric_raw

    now = utcnow()
    mark = store.floor_bucket(now - timedelta(minutes=30))
    store.rollup_range("15m", store.floor_bucket(now - timedelta(hours=3)), mark)
    db.session.add(MetricRollup(level="15m", done_until=mark))
    # Raw samples before the mark are gone (as if pruned): only the rollups hold them.
    db.session.execute(metric_raw.delete().where(metric_raw.c.ts < mark))
    # After the mark, the servers ran hotter: raw only.
    store.write([s for sid in (estate["hot"], estate["cool"])
                 for s in samples("baremetal", sid, 25, cpu_util=1.0)])
    db.session.commit()
    html = text(ops.get(f"/groups/{estate['group']}?range=7d"))
    label = labels(html)["cpu_util"]
    # Latest from raw (100 %), the mean between it and the rolled-up 60 %.
    assert label.startswith("CPU: latest 100 %, mean "), label
    mean = float(re.search(r"mean (\d+) %", label).group(1))
    assert 60 < mean < 100
    assert "maximum 100 %" in label


def test_a_policy_page_charts_the_members_mean_beside_the_target(app):
    """The scaling policy's page (issue 13): the metric it decides on — its VM group's
    members' mean — with the target as the line, from the same store; only members count."""
    from portal.autoscaling import service as autoscaling
    from portal.autoscaling.service import PolicyFields
    from portal.vm_groups import service as vm_groups

    group = f.group(name="pool-p")
    rack = f.rack(name="rack-p")
    servers = [f.server(group=group, rack=rack, rack_unit=unit, cpu=32, memory=128,
                        storage=1000) for unit in (1, 3)]
    tenant = f.tenant(name="shop-p")
    f.quota(tenant, group)
    flavor = f.flavor(cpu=4, memory=8, storage=50, name="std-4p")
    operator = f.user("ops-p", operator=True)
    outsider = f.vm(tenant, servers[0], flavor, name="not-a-member")
    db.session.commit()
    web = vm_groups.create_group(vm_groups.build_request(
        operator, name="web", tenant_id=tenant.id, group_id=group.id, spec_id=flavor.id,
        size=2), operator)
    policy = autoscaling.create_policy(operator, PolicyFields(
        target_type="vm_group", target_id=web.id, min=1, max=4, metric="cpu_util",
        target=0.5, mode="dry_run"))
    first, second = (vm.id for vm in vm_groups.members(web))
    store.write(samples("vm", first, 60, cpu_util=0.8) + samples("vm", second, 60, cpu_util=0.4)
                + samples("vm", outsider.id, 60, cpu_util=0.0))
    db.session.commit()
    client = client_for(app, "ops-view", operator=True)
    html = text(client.get(f"/autoscaling/{policy.id}"))
    assert labels(html) == {"cpu_util": "Members&#39; mean cpu_util: latest 60 %, mean 60 %, "
                                        "maximum 60 %; target 50 %"}
    assert 'id="timeline"' in html and 'id="utilisation"' in html


def test_group_charts_read_the_coarsest_rolled_up_level_then_the_finer_ones(app):
    from datetime import datetime

    from portal.metrics.store import aggregate_sources
    from portal.models import MetricRollup

    end = datetime(2026, 12, 4, 20, 7)
    db.session.add_all([MetricRollup(level="15m", done_until=datetime(2026, 12, 4, 20, 0)),
                        MetricRollup(level="1d", done_until=datetime(2026, 12, 4))])
    db.session.flush()
    assert aggregate_sources(end - timedelta(hours=1), end) == [
        ("raw", end - timedelta(hours=1), end)]
    assert aggregate_sources(end - timedelta(hours=24), end) == [
        ("15m", end - timedelta(hours=24), datetime(2026, 12, 4, 20, 0)),
        ("raw", datetime(2026, 12, 4, 20, 0), end)]
    assert aggregate_sources(end - timedelta(days=30), end) == [
        ("1d", end - timedelta(days=30), datetime(2026, 12, 4)),
        ("15m", datetime(2026, 12, 4), datetime(2026, 12, 4, 20, 0)),
        ("raw", datetime(2026, 12, 4, 20, 0), end)]
