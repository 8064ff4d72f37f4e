"""url_for, with the shape of each link worked out once.

A rack's page links some eight hundred objects, and Flask's url_for costs some 7 µs a
link (the URL map's build, its converters, the query string). Most of those links differ
only in an id: "/vms/<id>". So the first link to an endpoint with a given set of
arguments is built by Flask itself with distinct placeholder numbers in place of its
integer arguments, and split where they landed; later links of that shape are the pieces
joined around their own ids. What is not an integer (a string such as ``on="group"``) is
part of the shape. Anything unusual — an external or anchored link, a negative number, a
placeholder that does not land exactly once — goes to Flask every time, so the result is
always the string Flask would build (tests/web/test_urls.py checks every route). Outside
a request, and for endpoints relative to the current blueprint, Flask builds every link.
(The portal registers no URL defaults that depend on the request.)"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import url_for as flask_url_for
from flask.globals import _cv_request

# Placeholders no real id reaches (ids stop at 2**63 - 1; these are larger) and whose
# digits cannot appear by accident in the rest of a URL.
_PLACEHOLDER = 918_273_645_546_372_819_000
_UNSHAPED = object()


def url_for(endpoint: str, **values: Any) -> str:
    """flask.url_for's string, for links within the portal."""
    context = _cv_request.get(None)
    if context is None or endpoint.startswith("."):
        return flask_url_for(endpoint, **values)
    integers = []
    shape = []
    for name, value in values.items():
        if type(value) is int and value >= 0:
            integers.append(value)
            shape.append((name, None))
        elif name.startswith("_") or not isinstance(value, str):
            return flask_url_for(endpoint, **values)
        else:
            shape.append((name, value))
    if not integers:
        return flask_url_for(endpoint, **values)
    shapes = context.app.extensions["portal_url_shapes"]
    key = (context.request.root_path, endpoint, tuple(shape))
    pieces = shapes.get(key)
    if pieces is None:
        pieces = shapes[key] = _pieces(endpoint, shape)
    if pieces is _UNSHAPED:
        return flask_url_for(endpoint, **values)
    parts = [pieces[0]]
    for value, piece in zip(integers, pieces[1:], strict=True):
        parts.append(str(value))
        parts.append(piece)
    return "".join(parts)


def _pieces(endpoint: str, shape: list[tuple[str, str | None]]) -> Any:
    """The URL of this shape split around its integer arguments, in their order."""
    values: dict[str, Any] = {}
    placeholders = []
    for name, value in shape:
        if value is None:
            values[name] = _PLACEHOLDER + len(placeholders)
            placeholders.append(str(values[name]))
        else:
            values[name] = value
    try:
        url = flask_url_for(endpoint, **values)
    except Exception:  # noqa: BLE001 - Flask's own error is raised at each call instead
        return _UNSHAPED
    pieces = []
    rest = url
    for placeholder in placeholders:
        if url.count(placeholder) != 1 or placeholder not in rest:
            return _UNSHAPED
        head, rest = rest.split(placeholder, 1)
        pieces.append(head)
    pieces.append(rest)
    return pieces


def init_urls(app: Flask) -> None:
    app.extensions["portal_url_shapes"] = {}
    app.jinja_env.globals["url_for"] = url_for
