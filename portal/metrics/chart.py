"""Charts of measured use beside allocation, drawn on the server as SVG: readable without
JavaScript, styled by classes in static/css/portal.css (the CSP forbids inline styles).

`svg(chart)` is a pure function of a `Chart` (plain data: points, the allocated line, the
capacity the axis runs to, or the reason there is nothing to draw). The accessible summary
(latest, mean, maximum) is the SVG's label; `table_rows(chart)` is the same series in a few
rows for the `<details>` table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np
from babel.numbers import format_compact_decimal, format_decimal
from flask_babel import get_locale
from markupsafe import Markup, escape

from portal.i18n import _, format_datetime

Point = tuple[datetime, float]

# The drawing's own coordinates; CSS scales it to the column's width.
WIDTH, HEIGHT = 420, 170
LEFT, RIGHT, TOP, BOTTOM = 62, 10, 10, 24
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
# At most one point per two units of width: more would only thicken the line.
MAX_POINTS = PLOT_W // 2
TABLE_ROWS = 24


@dataclass(frozen=True)
class Chart:
    """One metric of one object (or an aggregate of servers) over [start, end).

    ``points`` are in the metric's unit; ``scale`` turns them into what is shown (100 for a
    0–1 share shown in %). ``allocated`` is what the portal handed out, ``capacity`` what
    there is (the axis' top when larger than every point); both in the shown unit.
    ``reason``: why there are no points (the source is down); None with no points means
    none were reported."""

    key: str
    title: str
    unit: str
    start: datetime
    end: datetime
    points: Sequence[Point] = ()
    allocated: float | None = None
    capacity: float | None = None
    scale: float = 1.0
    reason: str | None = None
    allocated_label: str = ""
    # The allocated line is a policy's target rather than an allocation (the summary says so).
    allocated_is_target: bool = False
    ident: str = field(default="", compare=False)

    @cached_property
    def offsets_and_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(seconds from start, value in the metric's unit) of every point, as arrays: made
        once per chart, though its line, its table and its gap test each read them."""
        origin, n = self.start, len(self.points)
        offsets = np.fromiter(((at - origin).total_seconds() for at, _ in self.points),
                              dtype=float, count=n)
        return offsets, np.fromiter((v for _, v in self.points), dtype=float, count=n)

    @property
    def values(self) -> list[float]:
        return [v * self.scale for _, v in self.points]

    @property
    def has_data(self) -> bool:
        return self.reason is None and bool(self.points)


@dataclass(frozen=True)
class Summary:
    latest: float
    mean: float
    maximum: float


def summary(chart: Chart) -> Summary | None:
    values = chart.values
    if chart.reason is not None or not values:
        return None
    return Summary(values[-1], sum(values) / len(values), max(values))


def number(value: float, unit: str) -> str:
    digits = "#,##0" if abs(value) >= 100 or unit in ("%",) else "#,##0.#"
    # Babel directly, with the request's locale (looked up once): a chart formats dozens.
    text = format_decimal(value, digits, locale=get_locale())
    return f"{text} %" if unit == "%" else f"{text} {unit}".strip()


def axis_number(value: float, unit: str) -> str:
    """An axis label: compact from 10,000 on ("30K GiB", "3萬 GiB"), to fit the margin."""
    if abs(value) < 10_000:
        return number(value, unit)
    text = format_compact_decimal(value, locale=get_locale(), fraction_digits=1)
    return f"{text} {unit}".strip()


def no_data_text(chart: Chart) -> str:
    if chart.reason:
        return _("No data: %(reason)s", reason=chart.reason)
    return _("No data: nothing was reported in this period.")


def describe(chart: Chart) -> str:
    """The one sentence a screen reader hears for the chart."""
    s = summary(chart)
    if s is None:
        return f"{chart.title}: {no_data_text(chart)}"
    text = _(
        "%(title)s: latest %(latest)s, mean %(mean)s, maximum %(maximum)s",
        title=chart.title, latest=number(s.latest, chart.unit),
        mean=number(s.mean, chart.unit), maximum=number(s.maximum, chart.unit),
    )
    if chart.allocated is not None and chart.allocated_is_target:
        text += "; " + _("target %(target)s", target=number(chart.allocated, chart.unit))
    elif chart.allocated is not None:
        text += "; " + _("allocated %(allocated)s", allocated=number(chart.allocated, chart.unit))
    if chart.capacity is not None:
        text += "; " + _("capacity %(capacity)s", capacity=number(chart.capacity, chart.unit))
    return text


def buckets(chart: Chart, count: int) -> list[tuple[datetime, float, float] | None]:
    """The window cut in ``count`` equal slices: (slice start, mean, max) of the shown values
    in each, None where nothing was measured (a gap, drawn as a break in the line). A point
    exactly at the end belongs to the last slice. (numpy: a month of raw samples is tens
    of thousands of points.)"""
    span = (chart.end - chart.start).total_seconds() or 1.0
    step = span / count
    if not chart.points:
        return [None] * count
    offsets, values = chart.offsets_and_values
    values = values * chart.scale
    index = np.floor(offsets / span * count).astype(np.int64)
    index[index == count] = count - 1
    inside = (index >= 0) & (index < count)
    index, values = index[inside], values[inside]
    sums = np.bincount(index, weights=values, minlength=count)
    counts = np.bincount(index, minlength=count)
    peaks = np.full(count, -np.inf)
    np.maximum.at(peaks, index, values)
    return [
        (chart.start + timedelta(seconds=i * step), float(sums[i] / counts[i]), float(peaks[i]))
        if counts[i] else None
        for i in range(count)
    ]


def table_rows(chart: Chart) -> list[tuple[datetime, float, float]]:
    """At most TABLE_ROWS rows (slice start, mean, maximum), slices without data left out."""
    if chart.reason is not None:
        return []
    return [row for row in buckets(chart, TABLE_ROWS) if row is not None]


def _top(chart: Chart, values: list[float]) -> float:
    top = max([*values, chart.allocated or 0, chart.capacity or 0, 0])
    if chart.unit == "%":
        top = max(top, 100.0)
    if top <= 0:
        return 1.0
    # A round number just above the largest value: 1 to 8 times a power of ten.
    power = 10 ** math.floor(math.log10(top))
    for factor in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if top <= factor * power + 1e-9:
            return factor * power
    return 10 * power


def _usual_interval(chart: Chart) -> float:
    """The median seconds between consecutive points (0 for fewer than two)."""
    if len(chart.points) < 2:
        return 0.0
    offsets, _values = chart.offsets_and_values
    return float(np.median(np.diff(offsets)))


def _x(chart: Chart, at: datetime) -> float:
    span = (chart.end - chart.start).total_seconds() or 1.0
    return LEFT + (at - chart.start).total_seconds() / span * PLOT_W


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - max(0.0, min(value, top)) / top * PLOT_H


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _time_label(chart: Chart, at: datetime) -> str:
    short = chart.end - chart.start < timedelta(days=1)
    return format_datetime(at, "HH:mm" if short else "MM-dd HH:mm")


def svg(chart: Chart) -> Markup:
    """The chart as an inline SVG element."""
    label = describe(chart)
    ident = escape(chart.ident or f"chart-{chart.key}")
    parts = [
        f'<svg class="metric-chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMidYMid meet" id="{ident}">',
        f"<title>{escape(label)}</title>",
        f'<rect class="chart-frame" x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}"/>',
    ]
    if not chart.has_data:
        # The reason can be long (a URL, an error): the label and the panel carry it; the
        # drawing says "No data" where a line would be.
        shown = _("No data") if chart.reason else no_data_text(chart)
        parts.append(
            f'<text class="chart-no-data" x="{LEFT + PLOT_W / 2:g}" y="{TOP + PLOT_H / 2:g}" '
            f'text-anchor="middle" dominant-baseline="middle">{escape(shown)}</text>'
        )
        parts.append("</svg>")
        return Markup("".join(parts))

    slices = buckets(chart, MAX_POINTS)
    top = _top(chart, [b[2] for b in slices if b is not None])
    # Grid and the value axis: 0, half and the top.
    for fraction in (0, 0.5, 1):
        y = _y(top * fraction, top)
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{LEFT + PLOT_W}" '
                     f'y1="{_f(y)}" y2="{_f(y)}"/>')
        parts.append(f'<text class="chart-axis" x="{LEFT - 4}" y="{_f(y)}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(axis_number(top * fraction, chart.unit))}'
                     "</text>")
    for at, anchor in ((chart.start, "start"), (chart.end, "end")):
        parts.append(f'<text class="chart-axis" x="{_f(_x(chart, at))}" y="{HEIGHT - 6}" '
                     f'text-anchor="{anchor}">{escape(_time_label(chart, at))}</text>')
    if chart.capacity is not None:
        y = _f(_y(chart.capacity, top))
        line_label = _("Capacity")  # outside the f-string: Babel does not extract from inside one
        parts.append(f'<line class="chart-capacity" x1="{LEFT}" x2="{LEFT + PLOT_W}" '
                     f'y1="{y}" y2="{y}"><title>{escape(line_label)} '
                     f'{escape(number(chart.capacity, chart.unit))}</title></line>')
    if chart.allocated is not None:
        y = _f(_y(chart.allocated, top))
        line_label = chart.allocated_label or _("Allocated")
        parts.append(f'<line class="chart-allocated" x1="{LEFT}" x2="{LEFT + PLOT_W}" '
                     f'y1="{y}" y2="{y}"><title>{escape(line_label)} '
                     f'{escape(number(chart.allocated, chart.unit))}</title></line>')
    # The measured line, broken where nothing was measured for longer than a few of the
    # series' usual intervals; a lone point is a dot.
    step = PLOT_W / MAX_POINTS
    slice_seconds = (chart.end - chart.start).total_seconds() / MAX_POINTS
    allowed = max(3 * _usual_interval(chart), 2 * slice_seconds)
    segments: list[list[tuple[str, str]]] = []
    last = None
    for i, slot in enumerate(slices):
        if slot is None:
            continue
        if last is None or (i - last) * slice_seconds > allowed:
            segments.append([])
        segments[-1].append((_f(LEFT + (i + 0.5) * step), _f(_y(slot[1], top))))
        last = i
    path = " ".join(
        ("M" if n == 0 else "L") + f"{x} {y}" for segment in segments
        for n, (x, y) in enumerate(segment)
    )
    if path:
        parts.append(f'<path class="chart-measured" d="{path}"/>')
    parts.extend(f'<circle class="chart-point" cx="{segment[0][0]}" cy="{segment[0][1]}" r="2"/>'
                 for segment in segments if len(segment) == 1)
    parts.append("</svg>")
    return Markup("".join(parts))
