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
from datetime import UTC, date, datetime, time
from functools import cache, cached_property, lru_cache
from numbers import Number
from pathlib import Path
from typing import Any

from babel import Locale
from babel import dates as babel_dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal as babel_format_decimal
from flask import Flask, g, has_request_context, request
from flask.globals import _cv_app
from flask_babel import (
    Babel,
    Domain,
    format_decimal,
    get_locale,
    get_timezone,
)
from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import gettext as babel_gettext
from flask_babel import ngettext as babel_ngettext
from flask_babel.speaklater import LazyString
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


class Speech:
    """How the current request speaks — its locale, catalogue, time zone and integer
    symbols — found once and kept in the application context beside flask_babel's own
    locale, so that `_`, figures and times cost a dictionary lookup each instead of
    flask_babel's context lookups (some 8 µs per string, and a page translates and
    formats a thousand). It is found again whenever flask_babel's locale object changes:
    its refresh() and force_locale() take effect as they do for flask_babel itself."""

    __slots__ = ("marker", "locale", "translations", "symbols", "timezone", "kept")

    def __init__(self, marker: Any, locale: Any) -> None:
        self.marker = marker
        self.locale = locale
        self.translations = babel.domain_instance.get_translations()
        self.symbols = _integer_symbols(str(locale)) if locale is not None else None
        self.timezone = get_timezone()
        self.kept: dict[Any, Any] = {}

    def keep(self, key: Any, build: Any) -> Any:
        """A value worked out once per request and language (translated labels, say)."""
        try:
            return self.kept[key]
        except KeyError:
            value = self.kept[key] = build()
            return value


def speech() -> Speech | None:
    """The current request's Speech; None outside an application context."""
    app_ctx = _cv_app.get(None)
    if app_ctx is None:
        return None
    store = app_ctx.g.__dict__
    known = store.get("_portal_speech")
    babel_ctx = store.get("_flask_babel")
    if known is not None and babel_ctx is not None:
        if getattr(babel_ctx, "babel_locale", None) is known.marker:
            return known
    locale = get_locale()
    known = store["_portal_speech"] = Speech(
        getattr(store.get("_flask_babel"), "babel_locale", None), locale)
    return known


def kept(key: Any, build: Any) -> Any:
    """``build()``, worked out once per request and language (translated labels, say);
    outside an application context, every time."""
    spoken = speech()
    return build() if spoken is None else spoken.keep(key, build)


def _(string: str, **variables: Any) -> str:
    """flask_babel's gettext, through the request's Speech."""
    spoken = speech()
    if spoken is None:
        return babel_gettext(string, **variables)
    text = spoken.translations.ugettext(string)
    return text % variables if variables else text


def _n(singular: str, plural: str, num: int, **variables: Any) -> str:
    """flask_babel's ngettext, through the request's Speech."""
    spoken = speech()
    if spoken is None:
        return babel_ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    return spoken.translations.ungettext(singular, plural, num) % variables


def _l(string: str, **variables: Any) -> LazyString:
    """A string translated when it is shown (form labels, choices, list columns)."""
    return LazyString(_, string, **variables)


def _ln(singular: str, plural: str, num: int, **variables: Any) -> LazyString:
    return LazyString(_n, singular, plural, num, **variables)


def _translations():
    spoken = speech()
    return spoken.translations if spoken is not None else babel.domain_instance.get_translations()


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
    spoken = speech()
    symbols = spoken.symbols if spoken is not None else None
    if symbols is None:
        return format_decimal(value)
    return _grouped(value, *symbols)


# Babel's named formats whose time part shows no time zone: the time part is then a
# function of the time of day alone, and the date part of the day alone.
_PLAIN_FORMATS = ("short", "medium")


@cache
def _datetime_joiner(locale: str, format: str) -> str:
    return babel_dates.get_datetime_format(format, locale=locale).replace("'", "")


@lru_cache(maxsize=8192)
def _time_part(locale: str, format: str, hour: int, minute: int, second: int) -> str:
    return babel_dates.format_time(time(hour, minute, second), format, tzinfo=None,
                                   locale=locale)


@lru_cache(maxsize=8192)
def _date_part(locale: str, format: str, day: date) -> str:
    return babel_dates.format_date(day, format, locale=locale)


def _local(value: datetime, zone: Any) -> datetime:
    """A stored time (naive: UTC) in the site's zone, as flask_babel's to_user_timezone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(zone)
    normalize = getattr(zone, "normalize", None)
    return normalize(value) if normalize is not None else value


def format_datetime(value: datetime, format: str = "medium") -> str:
    """flask_babel's format_datetime (a stored time in the site's zone, in the reader's
    language), the same string for every value and format, without its cost per call
    (some 60 µs): for the short and medium formats Babel composes a date part and a time
    part, and each is kept once made (a page's times share days, and a day has 1,440
    minutes). Other formats go to Babel with the request's locale and zone."""
    spoken = speech()
    if spoken is None or spoken.locale is None or spoken.timezone is None:
        return babel_format_datetime(value, format)
    local = _local(value, spoken.timezone)
    locale = str(spoken.locale)
    if format not in _PLAIN_FORMATS:
        return babel_dates.format_datetime(local, format, locale=spoken.locale)
    return (_datetime_joiner(locale, format)
            .replace("{0}", _time_part(locale, format, local.hour, local.minute, local.second))
            .replace("{1}", _date_part(locale, format, local.date())))


def format_date(value: date | datetime, format: str = "medium") -> str:
    """flask_babel's format_date (a stored time counts as the day it falls on in the
    site's zone), each day's string kept once made."""
    spoken = speech()
    if spoken is None or spoken.locale is None or spoken.timezone is None:
        return babel_format_date(value, format)
    if isinstance(value, datetime):
        value = _local(value, spoken.timezone).date()
    if format not in _PLAIN_FORMATS:
        return babel_dates.format_date(value, format, locale=spoken.locale)
    return _date_part(str(spoken.locale), format, value)


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

