"""The Prometheus source against a real Prometheus (Debian's package) scraping an exporter
the tests serve with known values."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from portal.extensions import db
from portal.metrics.prometheus import PrometheusSource, load_overrides, promql_names
from portal.metrics.query import SourceUnavailable
from tests import factories as f
from tests.metrics import prometheus_server


@pytest.fixture(scope="session")
def prometheus_url():
    with prometheus_server.exporter() as target:
        ready = 'node_cpu_seconds_total{mode="idle"}[6s] offset 6s'
        with prometheus_server.prometheus(target, ready) as url:
            yield url


@pytest.fixture
def estate(app):
    g = f.group()
    hot = f.server(group=g, name="pm-hot")
    cold = f.server(group=g, name="pm-cold.example")
    silent = f.server(group=g, name="pm-silent")
    t = f.tenant()
    web = f.vm(t, hot, f.flavor(cpu=4, memory=8, storage=40), name="vm-web")
    prod = f.cluster(t, g, name="k8s-prod")
    db.session.commit()
    return {"hot": hot.id, "cold": cold.id, "silent": silent.id, "web": web.id,
            "prod": prod.id}


# rate() divides by its whole window: a 5-minute one over a Prometheus started seconds ago
# reads low. The tests' window is shorter than the history the fixture waits for.
WINDOW = "4s"


def source(url, tmp_path=None, overrides="", **config):
    if tmp_path is not None:
        path = tmp_path / "queries.toml"
        path.write_text(f'rate_window = "{WINDOW}"\n' + overrides)
        config["PORTAL_PROMETHEUS_QUERIES"] = str(path)
    return PrometheusSource.from_config({"PORTAL_PROMETHEUS_URL": url, **config})


def now():
    return datetime.now(UTC).replace(tzinfo=None)


def test_server_metrics_come_from_node_exporter_series_by_instance_minus_port(
        prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path)
    ids = [estate["hot"], estate["cold"], estate["silent"]]
    cpu = prom.latest("baremetal", ids, "cpu_util", now() - timedelta(minutes=5))
    # No series for pm-silent: absent, not zero.
    assert set(cpu) == {estate["hot"], estate["cold"]}
    assert cpu[estate["hot"]][1] == pytest.approx(0.75, abs=0.03)
    assert cpu[estate["cold"]][1] == pytest.approx(0.10, abs=0.03)
    assert abs(cpu[estate["hot"]][0] - now()) < timedelta(seconds=30)
    memory = prom.latest("baremetal", ids, "memory_used_gib", None)
    assert memory[estate["hot"]][1] == pytest.approx(48)
    assert memory[estate["cold"]][1] == pytest.approx(8)
    # The tmpfs is left out of the storage used.
    storage = prom.latest("baremetal", ids, "storage_used_gib", None)
    assert storage[estate["hot"]][1] == pytest.approx(120)
    assert storage[estate["cold"]][1] == pytest.approx(10)


def test_vm_metrics_come_from_libvirt_exporter_series_by_domain(prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path)
    ids = [estate["web"]]
    assert prom.latest("vm", ids, "cpu_util", None)[estate["web"]][1] == pytest.approx(
        0.25, abs=0.03)
    assert prom.latest("vm", ids, "memory_used_gib", None)[estate["web"]][1] == 6
    assert prom.latest("vm", ids, "storage_used_gib", None)[estate["web"]][1] == 20


def test_cluster_metrics_come_from_kube_state_metrics_series_by_cluster(
        prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path)
    expected = {"nodes_ready": 3, "nodes_total": 4, "pods_pending": 2, "cpu_requested": 7.5,
                "memory_requested_gib": 24}
    for metric, value in expected.items():
        assert prom.latest("cluster", [estate["prod"]], metric, None) == {
            estate["prod"]: (pytest.approx(now(), abs=timedelta(seconds=30)), value)
        }, metric


def test_series_are_one_range_query_per_metric_with_points_in_the_window(
        prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path)
    end = now()
    start = end - timedelta(seconds=20)
    series = prom.series("baremetal", [estate["hot"], estate["cold"], estate["silent"]],
                         ["memory_used_gib", "cpu_util"], start, end, timedelta(seconds=2))
    assert set(series) == {(estate["hot"], "memory_used_gib"),
                           (estate["cold"], "memory_used_gib"),
                           (estate["hot"], "cpu_util"), (estate["cold"], "cpu_util")}
    points = series[(estate["hot"], "memory_used_gib")]
    assert len(points) >= 3
    assert all(start - timedelta(seconds=1) <= at <= end + timedelta(seconds=1)
               for at, _ in points)
    assert [at for at, _ in points] == sorted(at for at, _ in points)
    assert {value for _, value in points} == {48}
    # (The earliest rates, over a window reaching before Prometheus started, read low.)
    assert series[(estate["hot"], "cpu_util")][-1][1] == pytest.approx(0.75, abs=0.05)


def test_an_object_without_series_or_no_objects_is_no_points(prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path)
    assert prom.series("baremetal", [estate["silent"]], ["cpu_util"],
                       now() - timedelta(minutes=1), now()) == {}
    assert prom.latest("vm", [], "cpu_util", None) == {}


def test_queries_and_labels_are_overridden_from_a_toml_file(prometheus_url, estate, tmp_path):
    prom = source(prometheus_url, tmp_path, overrides=(
        "[queries.vm]\n"
        "memory_used_gib = '''label_replace(libvirt_domain_info_memory_usage_bytes"
        "{domain=~\"{names}\"}, \"vm_name\", \"$1\", \"domain\", \"(.*)\") / 1048576'''\n"
        "[labels.vm]\nlabel = \"vm_name\"\n"
    ))
    # The overridden query reports MiB, matched by the overridden label.
    assert prom.latest("vm", [estate["web"]], "memory_used_gib", None)[estate["web"]][1] == 6144
    # The other object types keep their defaults.
    assert prom.latest("cluster", [estate["prod"]], "nodes_total", None)[estate["prod"]][1] == 4


def test_an_override_file_with_mistakes_is_refused_with_the_reason(tmp_path):
    bad = tmp_path / "q.json"
    bad.write_text('{"queries": {"vm": {"load": "x{names}"}}}')
    with pytest.raises(ValueError, match="vm has no metric 'load'"):
        load_overrides(bad)
    bad.write_text('{"queries": {"vm": {"cpu_util": "rate(x[5m])"}}}')
    with pytest.raises(ValueError, match="containing {names}"):
        load_overrides(bad)
    bad.write_text('{"panels": {}}')
    with pytest.raises(ValueError, match="unknown section"):
        load_overrides(bad)
    bad.write_text('{"rate_window": "five minutes"}')
    with pytest.raises(ValueError, match="rate_window must be a Prometheus duration"):
        load_overrides(bad)


def test_names_are_matched_literally(prometheus_url, estate):
    # "pm-cold.example" must not match "pm-coldXexample"; quotes cannot break the string.
    assert promql_names(["pm-cold.example", 'a"b']) == 'a\\"b|pm\\\\-cold\\\\.example'


def test_a_prometheus_error_is_source_unavailable_with_its_reason(prometheus_url, estate,
                                                                  tmp_path):
    # The closing parenthesis is missing.
    prom = source(prometheus_url, tmp_path, overrides=(
        "[queries.baremetal]\ncpu_util = 'rate(node_cpu_seconds_total"
        "{instance=~\"{names}\"}[5m]'\n"))
    with pytest.raises(SourceUnavailable, match="HTTP 400: bad_data"):
        prom.latest("baremetal", [estate["hot"]], "cpu_util", None)


def test_a_prometheus_that_does_not_answer_times_out_as_source_unavailable(estate):
    # A socket that accepts connections (the kernel's backlog) and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        prom = source(f"http://127.0.0.1:{silent.getsockname()[1]}",
                      PORTAL_PROMETHEUS_TIMEOUT=0.5)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="did not answer within 0.5 s"):
            prom.series("baremetal", [estate["hot"]], ["cpu_util"],
                        now() - timedelta(hours=1), now())
        assert time.monotonic() - started < 3
    finally:
        silent.close()


def test_a_prometheus_that_is_not_there_is_source_unavailable(estate):
    port = prometheus_server.free_port()
    prom = source(f"http://127.0.0.1:{port}")
    with pytest.raises(SourceUnavailable, match="unreachable"):
        prom.latest("baremetal", [estate["hot"]], "cpu_util", None)


def test_the_timeout_defaults_to_three_seconds():
    assert PrometheusSource.from_config({"PORTAL_PROMETHEUS_URL": "http://p:9090/"}).timeout == 3
    assert PrometheusSource.from_config({"PORTAL_PROMETHEUS_URL": "http://p:9090/"}).url == (
        "http://p:9090")


def test_a_mistaken_override_file_is_no_data_with_the_mistake(tmp_path, estate):
    bad = tmp_path / "q.toml"
    bad.write_text("[queries.vm]\nload = 'x{names}'\n")
    prom_config = {"PORTAL_PROMETHEUS_URL": "http://127.0.0.1:9",
                   "PORTAL_PROMETHEUS_QUERIES": str(bad)}
    with pytest.raises(SourceUnavailable, match="vm has no metric 'load'"):
        PrometheusSource.from_config(prom_config)
    # Fixed: read again.
    bad.write_text("[queries.vm]\ncpu_util = 'x{names}'\n")
    assert PrometheusSource.from_config(prom_config).queries["vm"]["cpu_util"] == "x{names}"


def test_the_dashboard_reads_its_hot_spots_from_prometheus(prometheus_url, estate, app,
                                                          tmp_path):
    from tests.baremetals.pages import client_for, text
    from tests.metrics.test_dashboard import names, section

    ops = client_for(app, "ops-prom", operator=True)
    overrides = tmp_path / "queries.toml"
    overrides.write_text(f'rate_window = "{WINDOW}"\n')
    app.config.update(PORTAL_PROMETHEUS_URL=prometheus_url,
                      PORTAL_PROMETHEUS_QUERIES=str(overrides))
    try:
        html = text(ops.get("/"))
    finally:
        app.config.update(PORTAL_PROMETHEUS_URL=None, PORTAL_PROMETHEUS_QUERIES=None)
    # pm-hot uses 48 GiB where its VM was given 8; pm-cold.example 8 where nothing was,
    # which is the host's own reserve.
    over = section(html, "over-allocated")
    assert names(over) == ["pm-hot"]
    assert "48 of 8 GiB" in over
    # 75 % is not above 85 %.
    assert names(section(html, "hot-servers")) == []
    pending = section(html, "pending-clusters")
    assert names(pending) == ["k8s-prod"] and "2 pending" in pending
