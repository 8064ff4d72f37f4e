"""Bad input stops at the door, for pages and API alike: ids the database cannot hold name
nothing (404), and a NUL character — which PostgreSQL text cannot store — in the query
string or a form field is refused (400) before any view runs. (Uploaded files are read by
their service, which says which line holds one: portal.baremetals.service.)"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


class IdConverter(IntegerConverter):
    """Flask's ``int`` converter bounded to the database's integer ids, 1 to 2**31 - 1: a
    URL naming another number does not match, so it answers 404 instead of failing in the
    database.
    ASCII digits only (``\\d`` also matches ``²`` and other scripts' digits)."""

    regex = r"[0-9]+"

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = 1,  # noqa: A002
                 max: int | None = MAX_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


def refuse_nul() -> None:
    """400 when the query string or a form field holds a NUL."""
    for where, fields in (("query string", request.args), ("form", request.form)):
        for name, values in fields.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                abort(400, description=f"The {where} field {_shown(name)} contains a NUL "
                                       "character (U+0000), which no field accepts.")


def _shown(name: str) -> str:
    return repr(name.replace("\x00", "\\0"))


def init_guard(app: Flask) -> None:
    """Before any blueprint is registered: its rules must be built with the bounded
    converter."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_nul)
