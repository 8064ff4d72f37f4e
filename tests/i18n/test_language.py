"""Choosing the interface language (SPEC 8.3): the profile, then the cookie, then
Accept-Language; any Chinese is Traditional, never Simplified; the API's problem texts
follow Accept-Language alone."""

import pytest

from portal.extensions import db
from portal.models import User
from tests import factories
from tests.api.conftest import token_for
from tests.conftest import csrf_token_from

ENGLISH_FOOTER = "Resource Portal · internal operations tool"
CHINESE_FOOTER = "資源管理平台 · 內部維運工具"


def login_page(client, **headers):
    return client.get("/login", headers=headers).get_data(as_text=True)


@pytest.mark.parametrize("accept", ["zh-TW", "zh-Hant", "zh", "zh-Hant-HK,en;q=0.5",
                                    "zh-CN", "fr;q=1, zh-TW;q=0.8"])
def test_any_chinese_in_accept_language_gets_traditional(client, accept):
    html = login_page(client, **{"Accept-Language": accept})
    assert CHINESE_FOOTER in html
    assert '<html lang="zh-Hant-TW">' in html


@pytest.mark.parametrize("accept", [None, "en-US,en;q=0.9", "de-DE", "*"])
def test_everyone_else_reads_english(client, accept):
    html = login_page(client, **({"Accept-Language": accept} if accept else {}))
    assert ENGLISH_FOOTER in html
    assert '<html lang="en">' in html


def switch(client, tag, html, next_url="/login"):
    return client.post("/language", data={"locale": tag, "next": next_url,
                                          "csrf_token": csrf_token_from(html)})


def test_the_switch_sets_a_cookie_that_beats_accept_language(client):
    answer = switch(client, "zh-TW", login_page(client))
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert CHINESE_FOOTER in login_page(client, **{"Accept-Language": "en"})
    switch(client, "en", login_page(client))
    assert ENGLISH_FOOTER in login_page(client, **{"Accept-Language": "zh-TW"})


def test_an_unknown_language_is_refused_and_changes_nothing(client):
    answer = switch(client, "xx", login_page(client))
    assert answer.status_code == 400
    assert "portal_locale" not in answer.headers.get("Set-Cookie", "")


def test_the_switch_never_redirects_off_site(client):
    answer = switch(client, "zh-TW", login_page(client), next_url="https://evil.example/")
    assert answer.headers["Location"] == "/"


def test_a_signed_in_users_choice_is_kept_in_the_profile_and_beats_the_cookie(app, login):
    factories.user("mei", display_name="Mei")
    db.session.commit()
    first = app.test_client()
    log_in = login(first, "mei", factories.PASSWORD)
    assert log_in.status_code == 302
    dashboard = first.get("/").get_data(as_text=True)
    switch(first, "zh-TW", dashboard, next_url="/")
    assert db.session.scalar(db.select(User.locale).where(User.username == "mei")) == "zh-TW"
    # Another browser, which says it prefers English and has no cookie: the profile wins.
    second = app.test_client()
    login(second, "mei", factories.PASSWORD)
    html = second.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-Hant-TW">' in html


def test_the_api_follows_accept_language_only(api):
    user = factories.user("lin", operator=True)
    user.locale = "zh-TW"  # what they chose for the pages must not change a script's answers
    token = token_for(user)
    plain = api.get("/vms/999999", token)
    assert plain.status_code == 404
    assert (plain.json["code"], plain.json["title"]) == ("not_found", "Not found")
    chinese = api.get("/vms/999999", token, headers={"Accept-Language": "zh-TW"})
    assert (chinese.json["code"], chinese.json["title"]) == ("not_found", "找不到")
