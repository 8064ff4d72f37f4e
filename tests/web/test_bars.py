"""Capacity and quota bars: widths, tones and figures as the reader sees them."""

from flask import render_template_string

BARS = ('{% import "_macros/ui.html" as ui %}'
        '{{ ui.capacity_bar(used, total, unit="GiB") }}'
        '{{ ui.quota_bar(used, request, limit, "cores") }}')


def bars(app, used, total, request, limit):
    with app.app_context(), app.test_request_context("/"):
        return " ".join(render_template_string(BARS, used=used, total=total, request=request,
                                               limit=limit).split())


def test_a_bar_below_70_percent_is_green_and_as_wide_as_its_share(app):
    html = bars(app, 33, 100, 0, 100)
    assert "33 / 100 GiB" in html and "(33%)" in html
    assert 'aria-valuenow="33"' in html and "bg-success pct-33" in html
    assert "33 of 100 cores" in html and 'progress pct-33"' in html


def test_tones_turn_amber_then_red(app):
    assert "bg-warning pct-75" in bars(app, 75, 100, 0, 100)
    assert "bg-danger pct-95" in bars(app, 95, 100, 0, 100)


def test_a_bar_past_its_total_stays_full_width(app):
    html = bars(app, 1500, 1000, 0, 1000)
    assert "(150%)" in html and "bg-danger pct-100" in html


def test_a_request_over_the_limit_shows_the_whole_demand_and_by_how_much(app):
    html = bars(app, 48, 100, 16, 64)
    # 48 of 64 in use (75 %), the request the other 25 %: at the limit, not over it.
    assert "48 + 16 of 64 cores" in html and "(100%)" in html and "is-over" not in html
    assert 'progress pct-75"' in html and 'progress pct-25"' in html
    over = bars(app, 60, 100, 8, 64)
    assert "over by 4" in over and "is-over" in over
    assert 'progress pct-88"' in over and 'progress pct-12"' in over  # 60/68, 8/68


def test_a_tiny_request_still_shows_a_sliver(app):
    html = bars(app, 10, 100, 1, 100000)
    assert 'progress pct-0"' in html and 'progress pct-1"' in html


def test_figures_are_grouped(app):
    assert "12,345 / 100,000 GiB" in bars(app, 12345, 100000, 0, None)
