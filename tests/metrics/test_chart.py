"""The SVG charts: what is drawn, the allocated and capacity lines, the summary a screen
reader hears, the table beside it, and "no data" (never a zero line)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from portal.metrics import chart as charts

END = datetime(2026, 12, 1, 12, 0)
START = END - timedelta(hours=24)


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        yield


def cpu_chart(points, **kw):
    return charts.Chart("cpu_util", "CPU", "%", START, END, points=points, scale=100.0, **kw)


def path_points(svg: str) -> list[tuple[float, float]]:
    d = re.search(r'class="chart-measured" d="([^"]+)"', svg).group(1)
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+) ([\d.]+)", d)]


def test_the_measured_line_follows_the_points_left_to_right_and_scales_to_the_axis():
    points = [(START + timedelta(hours=h), v) for h, v in ((1, 0.25), (12, 0.5), (23, 1.0))]
    svg = str(charts.svg(cpu_chart(points)))
    drawn = path_points(svg)
    assert len(drawn) == 3
    xs = [x for x, _ in drawn]
    assert xs == sorted(xs)
    assert charts.LEFT < xs[0] < xs[-1] < charts.LEFT + charts.PLOT_W
    # 100 % is the top of the plot, 0 its bottom; 25 % a quarter of the way up.
    bottom = charts.TOP + charts.PLOT_H
    assert drawn[2][1] == pytest.approx(charts.TOP, abs=0.1)
    assert drawn[0][1] == pytest.approx(bottom - charts.PLOT_H / 4, abs=0.1)
    assert "100 %" in svg and "0 %" in svg


def test_a_gap_in_the_measurements_breaks_the_line():
    points = [(START + timedelta(minutes=m), 0.5) for m in (0, 10, 20)]
    points += [(START + timedelta(hours=20, minutes=m), 0.5) for m in (0, 10, 20)]
    svg = str(charts.svg(cpu_chart(points)))
    d = re.search(r'class="chart-measured" d="([^"]+)"', svg).group(1)
    assert d.count("M") == 2


def test_the_allocated_and_capacity_lines_are_drawn_at_their_values():
    points = [(START + timedelta(hours=h), 40.0) for h in range(24)]
    chart = charts.Chart("memory_used_gib", "Memory", "GiB", START, END, points=points,
                         allocated=64.0, capacity=128.0)
    svg = str(charts.svg(chart))
    allocated = re.search(r'class="chart-allocated"[^>]*y1="([\d.]+)"', svg)
    capacity = re.search(r'class="chart-capacity"[^>]*y1="([\d.]+)"', svg)
    assert allocated and capacity
    # The axis runs to a round number at or above the capacity (150 for 128).
    top = charts._top(chart, [40.0])
    assert top == 150
    bottom = charts.TOP + charts.PLOT_H
    assert float(capacity.group(1)) == pytest.approx(bottom - 128 / top * charts.PLOT_H, abs=0.1)
    assert float(allocated.group(1)) == pytest.approx(bottom - 64 / top * charts.PLOT_H, abs=0.1)
    assert float(allocated.group(1)) > float(capacity.group(1))  # lower on the page
    assert "Allocated 64 GiB" in svg and "Capacity 128 GiB" in svg


def test_the_svg_is_an_image_whose_label_summarises_latest_mean_and_maximum():
    points = [(START + timedelta(hours=1), 0.2), (START + timedelta(hours=2), 0.9),
              (START + timedelta(hours=3), 0.4)]
    svg = str(charts.svg(cpu_chart(points, allocated=50.0)))
    label = re.search(r'aria-label="([^"]+)"', svg).group(1)
    assert 'role="img"' in svg
    assert label == "CPU: latest 40 %, mean 50 %, maximum 90 %; allocated 50 %"
    assert f"<title>{label}</title>" in svg


def test_no_points_is_no_data_not_a_zero_line():
    svg = str(charts.svg(cpu_chart([])))
    assert "chart-measured" not in svg and "chart-allocated" not in svg
    assert "No data: nothing was reported in this period." in svg
    assert re.search(r'aria-label="CPU: No data', svg)
    assert "0 %" not in svg


def test_an_unavailable_source_is_no_data_with_its_reason():
    chart = cpu_chart([(START + timedelta(hours=1), 0.5)],
                      reason="Prometheus at http://p:9090 did not answer within 3 s")
    svg = str(charts.svg(chart))
    assert "chart-measured" not in svg
    assert "No data: Prometheus at http://p:9090 did not answer within 3 s" in svg
    assert charts.summary(chart) is None
    assert charts.table_rows(chart) == []


def test_text_in_the_svg_is_escaped():
    chart = cpu_chart([], reason='<script>alert("x")</script>')
    svg = str(charts.svg(chart))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_table_has_a_few_rows_of_mean_and_maximum():
    # A sample a minute for a day: 1,440 points in 24 rows of an hour each.
    points = [(START + timedelta(minutes=m), (m % 60) / 100) for m in range(24 * 60)]
    rows = charts.table_rows(cpu_chart(points))
    assert len(rows) == charts.TABLE_ROWS
    first_at, mean, peak = rows[0]
    assert first_at == START
    assert mean == pytest.approx(29.5)
    assert peak == pytest.approx(59)
    # The drawing is thinned to one point per slice, whatever the number of samples.
    assert len(path_points(str(charts.svg(cpu_chart(points))))) == charts.MAX_POINTS


def test_labels_follow_the_language(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        svg = str(charts.svg(cpu_chart([])))
    assert "No data: nothing was reported" not in svg


def test_large_axis_values_are_compact():
    chart = charts.Chart("memory_used_gib", "Memory", "GiB", START, END,
                         points=[(START + timedelta(hours=1), 12_000.0)], capacity=26_880.0)
    svg = str(charts.svg(chart))
    assert ">30K GiB<" in svg and ">15K GiB<" in svg
