"""Figures and template strings in the reader's language: the page helpers that skip
Babel's and flask_babel's cost per call give what those would."""

import pytest
from flask import render_template_string
from flask_babel import force_locale, format_decimal

from portal.i18n import figure

INTEGERS = [0, 7, -7, 999, 1000, -1000, 12345, -12345, 1234567, 10**12, -(10**15)]


@pytest.mark.parametrize("locale", ["en", "zh_Hant_TW", "de", "fr", "hi", "de_CH"])
def test_integers_are_grouped_as_babel_groups_them(app, locale):
    with app.app_context(), app.test_request_context("/"), force_locale(locale):
        for value in INTEGERS:
            assert figure(value) == format_decimal(value)


def test_figures_keep_their_shape(app):
    with app.app_context(), app.test_request_context("/"):
        assert figure(None) == "—"
        assert figure(1234.0) == "1,234"
        assert figure(1234.56) == "1,234.6"
        assert figure("<b>") == "&lt;b&gt;"


def test_templates_translate_with_the_readers_language_and_escape_arguments(app):
    source = ('{{ _("Memory") }}|{{ _("by %(user)s", user="<x>") }}|'
              '{{ ngettext("%(num)s tenant holds quota here.", '
              '"%(num)s tenants hold quota here.", 2) }}|{{ ui.num(1234567) }}')
    page = '{% import "_macros/ui.html" as ui %}' + source
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        chinese = render_template_string(page)
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "en"}):
        english = render_template_string(page)
        with force_locale("zh_Hant_TW"):
            forced = render_template_string(page)
        after = render_template_string(page)
    assert english == "Memory|by &lt;x&gt;|2 tenants hold quota here.|1,234,567"
    assert after == english
    assert chinese == forced != english
    assert "&lt;x&gt;" in chinese and "記憶體" in chinese
