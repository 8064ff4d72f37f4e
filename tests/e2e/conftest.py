"""Playwright against a live portal: a real server thread on a free port, the demo data on
its own SQLite database, and the system Chromium (no browser downloads here)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import make_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "portal.sqlite3"
    app = make_app(f"sqlite:///{path}")
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    return app


@pytest.fixture(scope="session")
def live_agent(live_app):
    """The reference agent in-process, as `make run` has it, quick enough for a test."""
    from portal.provisioning.agent import start_inline
    from portal.provisioning.drivers import SimulateDriver

    agent = start_inline(live_app, SimulateDriver(delay=1.0))
    yield agent
    agent.stop()


def closed_bodies(app):
    """Read each response whole and close it before the server writes it.

    Werkzeug's development server closes a response only after draining the request socket,
    and that drain raises when the browser has reset the connection (a cancelled favicon or
    stylesheet during navigation): the static file's handle is then left to the garbage
    collector, whose ResourceWarning fails whichever test happens to be running. Buffering
    here closes every file at once; the pages are small."""

    def wrapped(environ, start_response):
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wrapped


@pytest.fixture(scope="session")
def live_server(live_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, closed_bodies(live_app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test`, which installs it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def shoot(tmp_path):
    """Save a full-page screenshot under the test's tmp dir (and PORTAL_SCREENSHOTS, when
    set, so a person can look at them after the run)."""
    keep = os.environ.get("PORTAL_SCREENSHOTS")

    def take(page, name: str) -> Path:
        target = tmp_path / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(target, Path(keep) / target.name)
        return target

    return take


def log_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
