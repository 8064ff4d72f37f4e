"""The request's Speech (portal/i18n.py) looks its language up once per request; what it
says must be exactly what flask_babel says, string for string and time for time, in both
languages and in any site zone — and a locale forced or refreshed mid-request must take
effect as it does for flask_babel."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import flask_babel
import pytest
from babel.messages.mofile import read_mo
from flask_babel import force_locale, refresh

from portal import create_app
from portal.i18n import TRANSLATIONS, _, _l, _n, figure, format_date, format_datetime
from portal.web.labels import status_label

LANGS = ["en", "zh-TW"]


def _times(start: datetime, days: int, step: timedelta) -> list[datetime]:
    out, at = [], start
    while at < start + timedelta(days=days):
        out.append(at)
        at += step
    return out


# Every 97 minutes and 13 seconds over a year: every hour of the day, both halves of it,
# single- and double-digit days and months, the turn of the year.
TIMES = _times(datetime(2026, 1, 1, 0, 0, 7), 366, timedelta(minutes=97, seconds=13))


@pytest.fixture(scope="module", params=["Asia/Taipei", "America/New_York"])
def zoned_app(request, tmp_path_factory):
    """A site in Taipei (no daylight saving) and one in New York (two changes a year)."""
    path = tmp_path_factory.mktemp("speech") / "portal.sqlite3"
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "PORTAL_AGENT": "off",
                       "TESTING": True, "SECRET_KEY": "test", "PORTAL_TIMEZONE": request.param})


@pytest.mark.parametrize("lang", LANGS)
def test_times_and_days_read_as_flask_babel_writes_them(zoned_app, lang):
    with zoned_app.test_request_context("/", headers={"Accept-Language": lang}):
        for fmt in ("short", "medium", "long", "yyyy-MM-dd HH:mm", "MM-dd HH:mm"):
            for at in TIMES:
                assert format_datetime(at, fmt) == flask_babel.format_datetime(at, fmt), (fmt, at)
        for fmt in ("short", "medium", "long"):
            for at in TIMES[::7]:
                assert format_date(at, fmt) == flask_babel.format_date(at, fmt), (fmt, at)
                day = at.date()
                assert format_date(day, fmt) == flask_babel.format_date(day, fmt), (fmt, day)


def _msgids(lang_dir: str) -> list:
    with (TRANSLATIONS / lang_dir / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        return [m.id for m in read_mo(handle) if m.id]


@pytest.mark.parametrize("lang", LANGS)
def test_every_string_of_the_catalogue_reads_as_flask_babel_translates_it(app, lang):
    ids = _msgids("zh_Hant_TW")
    assert len(ids) > 1000
    with app.test_request_context("/", headers={"Accept-Language": lang}):
        refresh()
        for msgid in ids:
            values = {name: 7 if kind == "d" else "<x>" for name, kind in
                      re.findall(r"%\((\w+)\)([sd])", "".join(msgid))}
            if isinstance(msgid, (tuple, list)):  # a plural: (singular, plural)
                values.pop("num", None)
                for num in (0, 1, 2, 21):
                    ours = _n(*msgid, num, **values)
                    assert ours == flask_babel.ngettext(*msgid, num, **values), msgid
            else:
                assert _(msgid, **values) == flask_babel.gettext(msgid, **values), msgid
                assert str(_l(msgid, **values)) == str(
                    flask_babel.lazy_gettext(msgid, **values)), msgid


def test_a_forced_or_refreshed_locale_is_heard_at_once(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        refresh()
        assert (_("Edit"), status_label("active"), figure(1234567)) == (
            "Edit", "active", "1,234,567")
        with force_locale("zh_Hant_TW"):
            assert (_("Edit"), status_label("active")) == ("編輯", "運作中")
            assert format_datetime(datetime(2026, 3, 14, 5, 9), "short") == (
                flask_babel.format_datetime(datetime(2026, 3, 14, 5, 9), "short"))
        assert (_("Edit"), status_label("active")) == ("Edit", "active")
    # (a request of its own: the fixture's application context keeps the first's language)
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        assert _("Edit") == "編輯"
        assert format_date(date(2026, 3, 14), "medium") == "2026年3月14日"


def test_outside_a_request_flask_babel_answers(app):
    # No request: the application context's language (English), as flask_babel's.
    assert _("Edit") == flask_babel.gettext("Edit")
    assert _n("%(num)s VM", "%(num)s VMs", 2) == flask_babel.ngettext(
        "%(num)s VM", "%(num)s VMs", 2)
