"""Hand-off to the Provision Agent (SPEC 3)."""

from __future__ import annotations

from flask import Flask

AGENT_MODES = ("inline", "off")


def init_agent(app: Flask) -> None:
    mode = app.config["PORTAL_AGENT"]
    if mode not in AGENT_MODES:
        raise ValueError(f"PORTAL_AGENT must be one of {', '.join(AGENT_MODES)}, not {mode!r}")
