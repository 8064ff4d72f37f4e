"""The API's description, readable without a token: the OpenAPI document, and a page that
renders the same registry for people."""

from __future__ import annotations

from flask import current_app, json, render_template

from portal.api import api, bp
from portal.api.openapi import PREFIX, build
from portal.api.problems import TITLES
from portal.auth.access import public

API_VERSION = "1.0.0"


def document() -> dict:
    """Built once per process: operations are fixed when the blueprint is registered."""
    cached = current_app.extensions.get("api_openapi")
    if cached is None:
        cached = current_app.extensions["api_openapi"] = build(api.operations, API_VERSION)
    return cached


@bp.route("/openapi.json")
@public
def openapi():
    return current_app.response_class(json.dumps(document()), mimetype="application/json")


@bp.route("/docs")
@public
def docs():
    spec = document()
    by_tag: dict[str, list] = {}
    for op in api.operations:
        by_tag.setdefault(op.tags[0], []).append(
            (op, spec["paths"][PREFIX + op.path][op.method.lower()]))
    schemas = {name: json.dumps(schema, indent=2, ensure_ascii=False)
               for name, schema in spec["components"]["schemas"].items()}
    return render_template("api/docs.html", spec=spec, by_tag=by_tag, schemas=schemas,
                           prefix=PREFIX, problems=TITLES)
