"""The interface language (SPEC 8.3): English and Traditional Chinese (Taiwan).

Every user-visible string goes through `_` (at request time) or `_l` (defined at import
time: form labels, choices, list columns), both re-exported here so that the rest of the
code imports one module. The catalog lives in `portal/translations/zh_Hant_TW/`: Babel
parses "zh_TW" as zh_Hant_TW and gettext then looks for "zh_Hant_TW" and "zh" only, so a
`zh_TW` folder would be silently ignored (and a bare `zh` catalog would serve everyone
who asks for any Chinese, Simplified readers included).

The locale comes from the user's profile, then the `portal_locale` cookie, then
`Accept-Language`: any Chinese (zh, zh-TW, zh-Hant, zh-HK, even zh-CN) gets Traditional —
we never serve Simplified — and everything else English. Times are stored in UTC and shown
in the site's zone (`PORTAL_TIMEZONE`, default Asia/Taipei).
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from functools import cache, cached_property
from numbers import Number
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal as babel_format_decimal
from flask import Flask, g, has_request_context, request
from flask_babel import (
    Babel,
    Domain,
    format_date,
    format_datetime,
    format_decimal,
    get_locale,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _ln
from flask_babel import ngettext as _n
from flask_login import current_user
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

__all__ = ["_", "_l", "_n", "_ln", "LOCALES", "init_i18n", "locale_tag", "html_lang"]

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
COOKIE = "portal_locale"
# The value kept in profiles and cookies -> (Babel locale, name shown in the switch).
LOCALES = {
    "en": ("en", "English"),
    "zh-TW": ("zh_Hant_TW", "繁體中文"),
}
ONE_YEAR = 365 * 24 * 3600

def locale_tag(value: str | None) -> str | None:
    """A profile, cookie or Accept-Language value as one of LOCALES' keys, or None."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    if value == "en" or value.startswith("en-"):
        return "en"
    if value == "zh" or value.startswith("zh-"):
        return "zh-TW"
    return None


def select_tag() -> str:
    """Profile, then cookie, then Accept-Language (in the browser's order), then English.
    The API follows Accept-Language alone (SPEC 8.3): a script's answers must not change
    with what its user chose for the pages."""
    if not has_request_context():
        return "en"
    if "locale_tag" not in g:
        g.locale_tag = _choose_tag()
    return g.locale_tag


def _choose_tag() -> str:
    if not request.path.startswith("/api/"):
        user_choice = getattr(current_user, "locale", None) if current_user else None
        for candidate in (user_choice, request.cookies.get(COOKIE)):
            tag = locale_tag(candidate)
            if tag:
                return tag
    for value, _quality in request.accept_languages:
        tag = locale_tag(value)
        if tag:
            return tag
    return "en"


def _select_locale() -> str:
    return LOCALES[select_tag()][0]


def html_lang() -> str:
    """The page's lang attribute (BCP 47)."""
    return "zh-Hant-TW" if select_tag() == "zh-TW" else "en"


def compile_catalogs(directory: Path = TRANSLATIONS) -> None:
    """Compile each .po into its .mo when the .mo is missing or older, atomically, so that a
    fresh checkout (or several processes starting at once) always serves the catalog."""
    for po_path in directory.glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog, use_fuzzy=False)
            os.replace(tmp, mo_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _RequestDomain(Domain):
    """flask_babel's domain, finding the request's catalogue once per request: flask_babel
    looks it up anew on every call (some 7 µs, and a page translates a thousand strings).
    It is kept beside the request's locale, in the key flask_babel's own refresh() and
    force_locale() reset."""

    def get_translations(self):
        try:
            ctx = g.get("_flask_babel")
        except RuntimeError:  # no application context: flask_babel's answer, no translations
            return super().get_translations()
        found = getattr(ctx, "babel_translations", None)
        if found is not None and found[0] is getattr(ctx, "babel_locale", None):
            return found[1]
        translations = super().get_translations()
        ctx = g._flask_babel
        ctx.babel_translations = (getattr(ctx, "babel_locale", None), translations)
        return translations


class _PortalBabel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return _RequestDomain(domain=self.domain)


babel = _PortalBabel()


def _translations():
    return babel.domain_instance.get_translations()


@pass_eval_context
def _template_gettext(eval_ctx: EvalContext, string: str, **variables: Any) -> str:
    text = _translations().ugettext(string)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


@pass_eval_context
def _template_ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, **variables: Any
) -> str:
    variables.setdefault("num", num)
    text = _translations().ungettext(singular, plural, num)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


@cache
def _integer_symbols(locale: str) -> tuple[str, str] | None:
    """(group, minus) where the locale groups integers by threes as Python's "{:,}" does
    (checked against Babel), else None: then Babel formats."""
    parsed = Locale.parse(locale)
    symbols = parsed.number_symbols.get("latn", parsed.number_symbols)
    group, minus = symbols["group"], symbols["minusSign"]
    for probe in (-1234567, 1234, 123456789012):
        grouped = _grouped(probe, group, minus)
        if babel_format_decimal(probe, locale=parsed) != grouped:
            return None
    return group, minus


def _grouped(value: int, group: str, minus: str) -> str:
    text = f"{value:,}"
    if group != ",":
        text = text.replace(",", group)
    if minus != "-" and value < 0:
        text = minus + text[1:]
    return text


def format_integer(value: int) -> str:
    """An integer grouped the reader's way: Babel's format_decimal, without its cost per call
    (some 8 µs; list pages show hundreds of figures)."""
    locale = get_locale()
    symbols = _integer_symbols(str(locale)) if locale is not None else None
    if symbols is None:
        return format_decimal(value)
    return _grouped(value, *symbols)


def figure(value: Any) -> Markup:
    """A figure as pages show it (the `ui.num` widget): integers grouped the reader's way,
    other numbers to one decimal, None as a dash, anything else as itself (escaped)."""
    if value is None:
        return Markup("—")
    if isinstance(value, Number):
        try:
            whole = int(value)
        except (TypeError, ValueError, OverflowError):
            whole = None
        if whole is not None and value == whole:
            return Markup(format_integer(whole))
        return Markup(f"{float(value):,.1f}")
    return escape(value)


def init_i18n(app: Flask) -> None:
    app.config.setdefault("PORTAL_TIMEZONE", os.environ.get("PORTAL_TIMEZONE", "Asia/Taipei"))
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["PORTAL_TIMEZONE"]
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    compile_catalogs()
    babel.init_app(app, locale_selector=_select_locale)

    def datetime_filter(value: datetime | None, format: str = "medium") -> str:
        """A stored (naive UTC) time in the site's zone, in the reader's language."""
        if value is None:
            return "—"
        return format_datetime(value, format)

    def date_filter(value: date | datetime | None, format: str = "medium") -> str:
        """A day; a stored time counts as the day it falls on in the site's zone."""
        if value is None:
            return "—"
        return format_date(value, format)

    def number_filter(value: Any) -> str:
        """Digits grouped the reader's way (12,345)."""
        if value is None:
            return "—"
        if type(value) is int:
            return format_integer(value)
        return format_decimal(value)

    app.jinja_env.filters["datetime"] = datetime_filter
    app.jinja_env.filters["date"] = date_filter
    app.jinja_env.filters["number"] = number_filter
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["figure"] = figure
    # Templates translate through the request's catalogue (_translations), as Jinja's
    # "newstyle" gettext does (escaped arguments, %% always applied), and `_` calls it
    # straight, without the alias that looks gettext up again at each call.
    app.jinja_env.globals.update(
        _=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext,
    )

    @app.context_processor
    def _language_context() -> dict[str, Any]:
        return {"html_lang": html_lang(), "current_locale": select_tag()}

