"""Where the autoscaler reads measurements: the one place that calls the metrics module
(SPEC 8.4, portal/metrics/query.py), imported lazily so that everything else — the engine,
the controller, their tests — takes observations as plain data through ``SampleSource``."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

# (object ids, metric, since) -> {object id: (sample time, value)}; an object without a
# sample at or after ``since`` is absent: missing data is never zero.
SampleSource = Callable[[Sequence[int], str, datetime], dict[int, tuple[datetime, float]]]

METRICS_MODULE = "portal.metrics.query"
log = logging.getLogger(__name__)


def metrics_installed() -> bool:
    return (importlib.util.find_spec("portal.metrics") is not None
            and importlib.util.find_spec(METRICS_MODULE) is not None)


def latest_vm_samples(vm_ids: Sequence[int], metric: str,
                      since: datetime) -> dict[int, tuple[datetime, float]]:
    """Each VM's newest sample of ``metric`` since ``since`` (naive UTC). Without the
    metrics module installed there are no samples, so nothing ever scales down."""
    if not vm_ids or not metrics_installed():
        return {}
    from portal.metrics.query import SourceUnavailable, latest  # SPEC 8.4's measurements

    try:
        return latest("vm", vm_ids, metric, since)
    except SourceUnavailable as error:  # no data, never zero: the size is held
        log.warning("autoscaler: no measurements: %s", error)
        return {}
