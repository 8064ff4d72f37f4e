"""The status badge, capacity bar and quota bar drawn by portal/web/widgets.py are the markup
the Jinja macros of templates/_macros/ui.html drew (widget_markup.json holds that markup,
recorded from the macros in English and Traditional Chinese), as pages call them."""

import json
from pathlib import Path

import pytest
from flask import render_template_string

CASES = json.loads((Path(__file__).parent / "widget_markup.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_widgets_draw_the_macros_markup(app, lang):
    cases = [case for case in CASES if case["lang"] == lang]
    assert len(cases) == 36
    with app.test_request_context("/", headers={"Accept-Language": lang}):
        for case in cases:
            drawn = render_template_string(
                '{% import "_macros/ui.html" as ui %}'
                "{{ ui[widget](*args, **kwargs) }}", **case)
            assert drawn == case["html"], (case["widget"], case["args"], case["kwargs"])


def test_values_are_escaped_and_labels_translated(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        drawn = render_template_string(
            '{% import "_macros/ui.html" as ui %}'
            '{{ ui.status_badge("active", "mesh") }}{{ ui.capacity_bar(1, 2, label="<b>") }}')
    assert "啟用" in drawn
    assert "&lt;b&gt;" in drawn and "<b>" not in drawn
