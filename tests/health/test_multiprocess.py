"""/metrics under gunicorn with the checked-in configuration: a scrape, answered by any
worker, counts every worker's requests — also those of workers that were recycled since —
counters never go backwards, and recycling leaves no pile of files behind
(prometheus/client_python#568)."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.extensions import db
from tests.conftest import ThrowawayPostgres, make_app
from tests.deploy.processes import gunicorn, portal_env, wait_http

REQUESTS = 30
RECYCLE_AFTER = 8  # requests per worker (jitter: 0)
TIMEOUT = 60  # both workers may be restarting at once: requests wait in the backlog


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with ThrowawayPostgres("portal_metrics") as url:
        app = make_app(url)  # migrated
        with app.app_context():
            db.engine.dispose()
        yield url


def livez_count(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "portal_http_requests":
            return sum(s.value for s in family.samples
                       if s.name == "portal_http_requests_total"
                       and s.labels["route"] == "/livez")
    return 0.0


def test_counts_add_up_across_recycled_workers_without_piling_up_files(database, tmp_path):
    env = portal_env(database, WEB_CONCURRENCY="2", PORTAL_WEB_THREADS="2",
                     PORTAL_WEB_MAX_REQUESTS=str(RECYCLE_AFTER))
    web, base = gunicorn("web", tmp_path, env)
    web.start()
    try:
        wait_http(base + "/livez", web)
        # Probes that timed out while the workers booted are answered later, and counted.
        sent, seen = livez_count(base), []
        for _ in range(REQUESTS // 10):
            for _ in range(10):
                with urllib.request.urlopen(base + "/livez", timeout=TIMEOUT) as response:
                    assert response.status == 200
                sent += 1
            seen.append(livez_count(base))
        assert seen == sorted(seen), f"a counter went backwards: {seen}"
        assert livez_count(base) == sent
    finally:
        web.stop()
    booted = len(re.findall(r"Booting worker with pid", web.log()))
    files = sorted(p.name for p in (tmp_path / "web-metrics").glob("*.db"))
    # Every /livez and /metrics request counted, by 2 workers recycled every 8 requests.
    assert booted >= 4, web.log()[-2000:]
    # A file per kind and slot (two slots, three while one worker replaces another), not
    # per worker that ever ran.
    assert {re.sub(r"_slot\d+\.db$", "", name) for name in files} <= {"counter", "histogram"}
    assert len(files) <= 6 < 2 * booted, files
