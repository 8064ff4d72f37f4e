"""Measured utilisation read from a site's Prometheus (SPEC §8.4), through its HTTP API:
`/api/v1/query` for the latest value, `/api/v1/query_range` for a chart's series.

One PromQL template per (object type, metric), node_exporter style for servers,
libvirt-exporter style for VMs and kube-state-metrics style for clusters; a site whose
exporters are labelled differently overrides them in `PORTAL_PROMETHEUS_QUERIES` (a TOML or
JSON file, docs/metrics.md). A template names the objects asked for with ``{names}``, a
regular-expression alternation of their label values, and a counter's rate window with
``{window}`` (``rate_window``, 5m); each result series carries the object's label
(``instance``, ``domain``, ``cluster``) by which it is matched back.

Whatever goes wrong — a timeout, a refused connection, an HTTP error, a query Prometheus
rejects, an answer that is not what the API documents — raises SourceUnavailable with the
reason, so that a page shows "no data" rather than a load of zero.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from portal.extensions import db
from portal.i18n import _
from portal.metrics.query import SourceUnavailable

Point = tuple[datetime, float]
GIB = "1073741824"
# node_exporter's `instance` label is host:port; a server's name is the host part.
_SERVER = 'instance=~"({names})(:[0-9]+)?"'
_VM = 'domain=~"{names}"'
_CLUSTER = 'cluster=~"{names}"'

DEFAULT_QUERIES: dict[str, dict[str, str]] = {
    "baremetal": {
        "cpu_util": (
            "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\","
            + _SERVER + "}[{window}]))"
        ),
        "memory_used_gib": (
            "(node_memory_MemTotal_bytes{" + _SERVER + "}"
            " - node_memory_MemAvailable_bytes{" + _SERVER + "}) / " + GIB
        ),
        "storage_used_gib": (
            "sum by (instance) (node_filesystem_size_bytes{fstype!~\"tmpfs|overlay|squashfs\","
            + _SERVER + "} - node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay|squashfs\","
            + _SERVER + "}) / " + GIB
        ),
    },
    "vm": {
        "cpu_util": (
            "sum by (domain) (rate(libvirt_domain_info_cpu_time_seconds_total{"
            + _VM + "}[{window}]))"
            " / sum by (domain) (libvirt_domain_info_virtual_cpus{" + _VM + "})"
        ),
        "memory_used_gib": (
            "sum by (domain) (libvirt_domain_info_memory_usage_bytes{" + _VM + "}) / " + GIB
        ),
        "storage_used_gib": (
            "sum by (domain) (libvirt_domain_block_stats_allocation_bytes{" + _VM + "}) / " + GIB
        ),
    },
    "cluster": {
        "nodes_ready": (
            "sum by (cluster) (kube_node_status_condition{condition=\"Ready\",status=\"true\","
            + _CLUSTER + "})"
        ),
        "nodes_total": "count by (cluster) (kube_node_info{" + _CLUSTER + "})",
        "pods_pending": (
            "sum by (cluster) (kube_pod_status_phase{phase=\"Pending\"," + _CLUSTER + "})"
        ),
        "cpu_requested": (
            "sum by (cluster) (kube_pod_container_resource_requests{resource=\"cpu\","
            + _CLUSTER + "})"
        ),
        "memory_requested_gib": (
            "sum by (cluster) (kube_pod_container_resource_requests{resource=\"memory\","
            + _CLUSTER + "}) / " + GIB
        ),
    },
}


@dataclass(frozen=True)
class LabelMapping:
    """How a portal object is found in Prometheus: the series label holding its name, and
    whether that label carries a ``:port`` to strip (node_exporter's ``instance``)."""

    label: str
    strip_port: bool = False

    def name_of(self, value: str) -> str:
        if self.strip_port:
            host, sep, port = value.rpartition(":")
            if sep and port.isdigit() and not host.endswith(":"):
                return host.strip("[]")
        return value


DEFAULT_LABELS = {
    "baremetal": LabelMapping("instance", strip_port=True),
    "vm": LabelMapping("domain"),
    "cluster": LabelMapping("cluster"),
}

# Most points a range query asks for (Prometheus refuses more than 11,000 per series).
MAX_POINTS = 500
MIN_STEP = timedelta(seconds=15)


def _models():
    from portal.models import Baremetal, K8sCluster, VirtualMachine

    return {"baremetal": Baremetal, "vm": VirtualMachine, "cluster": K8sCluster}


def promql_names(names: Iterable[str]) -> str:
    """An alternation matching exactly these names, quoted for a PromQL string literal
    (RE2 syntax, which Prometheus anchors at both ends)."""
    alternation = "|".join(re.escape(name) for name in sorted(set(names)))
    return alternation.replace("\\", "\\\\").replace('"', '\\"')


DEFAULT_WINDOW = "5m"
WINDOW_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def load_overrides(path: str | Path) -> tuple[dict, dict, str | None]:
    """Queries, label mappings and the rate window from a TOML or JSON file:

        rate_window = "2m"
        [queries.baremetal]
        cpu_util = '1 - avg by (instance) (...{names}...)'
        [labels.vm]
        label = "name"
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as error:
        raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: %(error)s", path=path,
                           error=error)) from None
    unknown = set(data) - {"queries", "labels", "rate_window"}
    if unknown:
        raise ValueError(_(
            "PORTAL_PROMETHEUS_QUERIES %(path)s: unknown section(s) %(sections)s (expected "
            "rate_window, queries, labels)", path=path, sections=", ".join(sorted(unknown))))
    queries: dict[str, dict[str, str]] = {}
    for object_type, metrics in data.get("queries", {}).items():
        if object_type not in DEFAULT_QUERIES:
            raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: unknown object type "
                               "%(type)s", path=path, type=repr(object_type)))
        for metric, template in metrics.items():
            if metric not in DEFAULT_QUERIES[object_type]:
                raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: %(type)s has no "
                                   "metric %(metric)s", path=path, type=object_type,
                                   metric=repr(metric)))
            if not isinstance(template, str) or "{names}" not in template:
                raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: the %(type)s "
                                   "%(metric)s query must be a string containing {names}",
                                   path=path, type=object_type, metric=metric))
            queries.setdefault(object_type, {})[metric] = template
    labels = {}
    for object_type, mapping in data.get("labels", {}).items():
        if object_type not in DEFAULT_LABELS or not isinstance(mapping.get("label"), str):
            raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: labels.%(type)s needs "
                               "a known object type and a label name", path=path,
                               type=object_type))
        labels[object_type] = LabelMapping(mapping["label"], bool(mapping.get("strip_port")))
    window = data.get("rate_window")
    if window is not None and not (isinstance(window, str) and WINDOW_RE.match(window)):
        raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: rate_window must be a "
                           "Prometheus duration such as 5m, not %(window)s", path=path,
                           window=repr(window)))
    return queries, labels, window


def _cached_overrides(path: str | Path) -> tuple[dict, dict, str | None]:
    """load_overrides, read again only when the file changes (each page asks for a source)."""
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError as error:
        raise ValueError(_("PORTAL_PROMETHEUS_QUERIES %(path)s: %(error)s", path=path,
                           error=error)) from None
    return _load_once(str(path), stamp)


@functools.lru_cache(maxsize=4)
def _load_once(path: str, stamp: int) -> tuple[dict, dict, str | None]:
    return load_overrides(path)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{value.timestamp():.3f}"


def _as_datetime(value: float) -> datetime:
    # The store speaks naive UTC (portal.models.base.utcnow); so does this source.
    return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)


def default_step(start: datetime, end: datetime) -> timedelta:
    span = max((end - start).total_seconds(), 0)
    return max(MIN_STEP, timedelta(seconds=math.ceil(span / MAX_POINTS)))


@dataclass
class PrometheusSource:
    url: str
    timeout: float = 3.0
    queries: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_QUERIES)
    labels: Mapping[str, LabelMapping] = field(default_factory=lambda: DEFAULT_LABELS)
    window: str = DEFAULT_WINDOW

    @classmethod
    def from_config(cls, config: Mapping) -> PrometheusSource:
        url = (config.get("PORTAL_PROMETHEUS_URL") or "").strip()
        if not url:
            raise ValueError("PORTAL_PROMETHEUS_URL is not set")
        queries = {kind: dict(metrics) for kind, metrics in DEFAULT_QUERIES.items()}
        labels = dict(DEFAULT_LABELS)
        window = None
        if config.get("PORTAL_PROMETHEUS_QUERIES"):
            try:
                extra_queries, extra_labels, window = _cached_overrides(
                    config["PORTAL_PROMETHEUS_QUERIES"])
            except ValueError as mistake:
                # Shown where the charts would be, so that the operator sees it.
                raise SourceUnavailable(str(mistake)) from None
            for kind, metrics in extra_queries.items():
                queries[kind].update(metrics)
            labels.update(extra_labels)
        return cls(url.rstrip("/"), float(config.get("PORTAL_PROMETHEUS_TIMEOUT") or 3.0),
                   queries, labels, window or DEFAULT_WINDOW)

    # The two calls portal.metrics.query makes.
    def latest(self, object_type: str, ids, metric: str,
               since: datetime | None = None) -> dict[int, tuple[datetime, float]]:
        """The newest value of ``metric`` for each object Prometheus has it for. Prometheus
        answers an instant query from samples within its lookback window (5 minutes by
        default), so a series that stopped longer ago is absent; ``since``, when later than
        that, drops what is older still."""
        by_name = self._names(object_type, ids)
        if not by_name:
            return {}
        data = self._get("/api/v1/query", {
            "query": self._expression(object_type, metric, by_name),
            "time": _timestamp(datetime.now(UTC)),
        }, "vector")
        result: dict[int, tuple[datetime, float]] = {}
        for series in data:
            at, value = series.get("value", (None, None))
            sample = self._sample(at, value)
            if sample is None or (since is not None and sample[0] < since):
                continue
            for object_id in self._ids_of(object_type, series, by_name):
                result[object_id] = sample
        return result

    def series(self, object_type: str, ids, metrics, start: datetime, end: datetime,
               step: int | timedelta | None = None) -> dict[tuple[int, str], list[Point]]:
        """Each (object, metric)'s points between start and end, one range query per metric
        for all the objects together; ``step`` in seconds (or a timedelta), by default about
        MAX_POINTS points over the range."""
        by_name = self._names(object_type, ids)
        if not by_name:
            return {}
        if isinstance(step, int | float):
            step = timedelta(seconds=step)
        step = step or default_step(start, end)
        result: dict[tuple[int, str], list[tuple[datetime, float]]] = {}
        for metric in metrics:
            data = self._get("/api/v1/query_range", {
                "query": self._expression(object_type, metric, by_name),
                "start": _timestamp(start),
                "end": _timestamp(end),
                "step": f"{max(step.total_seconds(), 1):g}",
            }, "matrix")
            for series in data:
                points = [p for p in (self._sample(*pair) for pair in series.get("values", []))
                          if p is not None]
                for object_id in self._ids_of(object_type, series, by_name):
                    result[(object_id, metric)] = points
        return result

    # Internals.
    def _names(self, object_type: str, ids) -> dict[str, list[int]]:
        model = _models().get(object_type)
        if model is None:
            raise ValueError(f"unknown object type {object_type!r}")
        ids = list(ids)
        if not ids:
            return {}
        by_name: dict[str, list[int]] = {}
        for object_id, name in db.session.execute(
                select(model.id, model.name).where(model.id.in_(ids))):
            by_name.setdefault(name, []).append(object_id)
        return by_name

    def _expression(self, object_type: str, metric: str, by_name: Mapping[str, list[int]]) -> str:
        template = self.queries.get(object_type, {}).get(metric)
        if template is None:
            raise ValueError(f"no Prometheus query for the {object_type} metric {metric!r}")
        return (template.replace("{names}", promql_names(by_name))
                .replace("{window}", self.window))

    def _ids_of(self, object_type: str, series: Mapping, by_name) -> list[int]:
        mapping = self.labels[object_type]
        value = (series.get("metric") or {}).get(mapping.label)
        if value is None:
            return []
        return by_name.get(mapping.name_of(value), [])

    @staticmethod
    def _sample(at, value) -> tuple[datetime, float] | None:
        try:
            number = float(value)
            when = _as_datetime(at)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
        # Prometheus writes NaN and ±Inf as strings (a rate over no samples, 0/0); a
        # missing measurement is no point, never a zero.
        return (when, number) if math.isfinite(number) else None

    def _get(self, path: str, params: dict, result_type: str) -> list:
        params = {**params, "timeout": f"{self.timeout:g}s"}
        # POSTed as a form (the API takes both): a query naming thousands of servers does
        # not fit in a URL.
        request = urllib.request.Request(
            f"{self.url}{path}", data=urllib.parse.urlencode(params).encode(),
            headers={"Accept": "application/json",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise SourceUnavailable(_("Prometheus answered HTTP %(code)s: %(error)s",
                                      code=error.code, error=_error_text(error.read()))
                                    ) from None
        except TimeoutError:
            raise SourceUnavailable(self._silent()) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise SourceUnavailable(self._silent()) from None
            raise SourceUnavailable(self._unreachable(reason)) from None
        except (OSError, ValueError) as error:
            raise SourceUnavailable(self._unreachable(error)) from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise SourceUnavailable(_("Prometheus answered something other than JSON")) \
                from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise SourceUnavailable(_("Prometheus refused the query: %(error)s",
                                      error=_error_text(body)))
        data = answer.get("data") or {}
        if data.get("resultType") != result_type or not isinstance(data.get("result"), list):
            raise SourceUnavailable(_(
                "Prometheus answered a %(answered)s where a %(expected)s was expected",
                answered=repr(data.get("resultType")), expected=result_type))
        return data["result"]

    def _silent(self) -> str:
        return _("Prometheus at %(url)s did not answer within %(seconds)s s", url=self.url,
                 seconds=format(self.timeout, "g"))

    def _unreachable(self, error: object) -> str:
        return _("Prometheus at %(url)s unreachable: %(error)s", url=self.url, error=error)


def _error_text(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return f"{answer.get('errorType', 'error')}: {answer.get('error', '')}".strip()
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace").strip() or _("no explanation")
