"""Every response carries the security headers; pages of a signed-in user are never
cached; templates hold no inline script, handler or eval-needing htmx, so the CSP can
forbid them."""

from __future__ import annotations

import re

import pytest

from portal.config import ROOT
from portal.extensions import db
from tests import factories as f
from tests.conftest import csrf_token_from

TEMPLATES = ROOT / "templates"


@pytest.fixture
def alice(app):
    user = f.user("alice", operator=True)
    db.session.commit()
    return user


def csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in policy.split("; ")}


@pytest.mark.parametrize("url", ["/login", "/api/v1/docs", "/api/v1/openapi.json",
                                 "/static/js/portal.js", "/no-such-page"])
def test_every_response_carries_the_security_headers(client, url):
    response = client.get(url)
    response.close()
    policy = csp(response)
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_never_stored(client, login, alice):
    login(client, "alice", f.PASSWORD)
    for url in ("/", "/racks/", "/profile", "/audit/"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url
    static = client.get("/static/js/portal.js")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_the_page_showing_a_new_token_is_never_stored(client, login, alice):
    login(client, "alice", f.PASSWORD)
    token = csrf_token_from(client.get("/profile").get_data(as_text=True))
    response = client.post("/profile", data={"name": "laptop", "csrf_token": token})
    assert 'id="new-token"' in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on*= handler attribute"),
    (re.compile(r"\bhx-on"), "hx-on (needs eval)"),
    (re.compile(r"hx-trigger=\"[^\"]*\["), "an htmx trigger filter (needs eval)"),
    (re.compile(r"\b(?:hx-vals|hx-vars)=['\"]\s*(?:js:|javascript:)"), "js: values (eval)"),
    (re.compile(r"\sstyle\s*="), "an inline style attribute"),
    (re.compile(r"<style", re.I), "an inline <style>"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")),
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_nothing_the_csp_forbids(path):
    text = path.read_text(encoding="utf-8")
    for pattern, what in INLINE:
        match = pattern.search(text)
        assert match is None, f"{what} in {path.name}: {match.group(0)!r}"


def test_htmx_runs_without_eval_and_without_injected_styles():
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    assert '"allowEval": false' in base and '"includeIndicatorStyles": false' in base
