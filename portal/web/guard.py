"""Bad input stops at the door, for pages and API alike: ids the database cannot hold name
nothing (404), and a NUL character — which PostgreSQL text cannot store — in the query
string or a form field is refused (400) before any view runs. (Uploaded files are read by
their service, which says which line holds one: portal.baremetals.service.)"""

from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


def numbers_up_to(limit: int) -> str:
    """A regular expression matching the decimal numbers 1 to ``limit`` (leading zeros
    allowed), and nothing else."""
    digits = str(limit)
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    # Same length as the limit: equal up to some digit, smaller there, anything after.
    below = [
        f"{digits[:i]}[{int(i == 0)}-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}"
        for i, d in enumerate(digits) if int(d) > int(i == 0)
    ]
    return "0*(?:" + "|".join([*shorter, *below, digits]) + ")"


class IdConverter(IntegerConverter):
    """Flask's ``int`` converter bounded to the database's integer ids, 1 to 2**31 - 1, by
    its pattern: a URL naming another number matches no rule, so pages answer 404 and the
    API its not_found problem, instead of failing in the database. (A bound checked after
    matching would stop the router at the first such rule: a 405 where 404 is meant.)"""

    regex = numbers_up_to(MAX_ID)


def refuse_nul() -> None:
    """400 when the query string or a form field holds a NUL."""
    from portal.i18n import _

    for where, fields in (("query", request.args), ("form", request.form)):
        for name, values in fields.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                message = (_("The query string field %(name)s contains a NUL character "
                             "(U+0000), which no field accepts.", name=_shown(name))
                           if where == "query" else
                           _("The form field %(name)s contains a NUL character (U+0000), "
                             "which no field accepts.", name=_shown(name)))
                abort(400, description=message)


def _shown(name: str) -> str:
    return repr(name.replace("\x00", "\\0"))


def init_guard(app: Flask) -> None:
    """Before any blueprint is registered: its rules must be built with the bounded
    converter."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_nul)
