"""Hand-off to the Provision Agent (SPEC 3)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask

AGENT_MODES = ("inline", "off")


def init_agent(app: Flask) -> None:
    """PORTAL_AGENT=inline runs the reference agent in a thread of the web process (the
    embedded demo); `off` leaves provisioning to `flask agent run` or remote agents.

    The thread starts with the first request, so CLI commands and the reloader's watching
    parent never run one."""
    mode = app.config["PORTAL_AGENT"]
    if mode not in AGENT_MODES:
        raise ValueError(f"PORTAL_AGENT must be one of {', '.join(AGENT_MODES)}, not {mode!r}")
    if mode != "inline":
        return

    def start():
        from portal.provisioning.agent import start_inline
        from portal.provisioning.drivers import SimulateDriver

        return start_inline(
            app,
            SimulateDriver(
                delay=float(app.config["PORTAL_AGENT_DELAY"]),
                failure_rate=float(app.config["PORTAL_AGENT_FAILURE_RATE"]),
            ),
        )

    start_with_first_request(app, "inline_agent", start)


def start_with_first_request(app: Flask, key: str, start: Callable[[], object]) -> None:
    """Run ``start`` once, on the first request (never in CLI commands or the reloader's
    watching parent), keeping what it returns in ``app.extensions[key]``."""
    lock = threading.Lock()

    @app.before_request
    def _start_once() -> None:
        if key in app.extensions:
            return
        with lock:
            if key not in app.extensions:
                app.extensions[key] = start()
