"""The figures a capacity or quota bar draws (templates/_macros/ui.html), worked out in one
call: the widgets run a few hundred times on a list page, and each small macro they called
for a width or a tone cost more than the arithmetic."""

from __future__ import annotations

from typing import Any, NamedTuple

from flask import Flask


def width(pct: float) -> int:
    """A percentage as an integer 0–100, for the .pct-N width classes."""
    return min(max(int(round(pct, 0)), 0), 100)


def tone(pct: float) -> str:
    """Green below 70 %, amber below 90 %, red above."""
    return "success" if pct < 70 else ("warning" if pct < 90 else "danger")


class CapacityBar(NamedTuple):
    pct: int  # used / total, rounded (may pass 100)
    width: int
    tone: str


class QuotaBar(NamedTuple):
    over: bool  # used + request > limit
    used_width: int
    request_width: int
    tone: str
    pct: int  # (used + request) / limit, rounded


def capacity_bar(used: Any, total: Any) -> CapacityBar:
    pct = used / total * 100
    return CapacityBar(int(round(pct, 0)), width(pct), tone(pct))


def quota_bar(used: Any, request: Any, limit: Any) -> QuotaBar:
    """limit is not None. Over the limit the bar shows the whole demand, so both parts stay
    visible; a request too small to show still gets a sliver."""
    after = used + request
    over = after > limit
    scale = after if over else limit
    used_width = width(used / scale * 100 if scale else 0)
    request_width = width(after / scale * 100 if scale else 0) - used_width
    if request > 0 and request_width == 0 and used_width < 100:
        request_width = 1
    pct = after / limit * 100 if limit else 0
    return QuotaBar(
        over, used_width, request_width, "danger" if over else tone(pct),
        int(round(after / limit * 100, 0)) if limit else 0,
    )


def init_bars(app: Flask) -> None:
    app.jinja_env.globals["capacity_figures"] = capacity_bar
    app.jinja_env.globals["quota_figures"] = quota_bar
