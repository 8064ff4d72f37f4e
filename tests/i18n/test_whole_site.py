"""The whole demo site in Traditional Chinese, as each of the three demo logins: every page
reachable by links from the dashboard (one per page shape, sorted and filtered lists
included) leaves no English interface text (data aside). The area tests beside this one
also post bad forms and visit error pages; this one proves nothing was left out between
them — a page added later without translations fails here."""

from __future__ import annotations

import pytest

from portal.seed.demo import LOGINS
from tests.conftest import log_in
from tests.i18n.leaks import crawl, data_strings, english_left

ZH = {"Accept-Language": "zh-TW"}


@pytest.fixture(scope="module")
def demo(sqlite_app):
    from tests.conftest import empty_database

    empty_database(sqlite_app)
    result = sqlite_app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    return sqlite_app


@pytest.mark.parametrize("username,password", [(u, p) for u, p, _role in LOGINS])
def test_every_page_a_demo_login_reaches_reads_chinese(demo, username, password):
    with demo.app_context():
        data = data_strings()
        client = demo.test_client()
        assert log_in(client, username, password).status_code == 302
        seen, leaks = 0, {}
        for url, html in crawl(client, "/", limit=250, headers=ZH):
            seen += 1
            assert 'lang="zh-Hant-TW"' in html, url
            left = english_left(html, data)
            if left:
                leaks[url] = sorted(set(left))
        assert leaks == {}, "\n".join(f"{u}: {w}" for u, w in leaks.items())
        assert seen > (40 if username == "ops-admin" else 10), seen
