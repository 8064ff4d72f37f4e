from flask import Blueprint, render_template, request

from portal.auth.access import requires
from portal.search.service import ALL_LIMIT, readable_types, search

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("/")
@requires("search")
def index():
    q = (request.args.get("q") or "").strip()[:200]
    types = readable_types()
    kind = request.args.get("type") or ""
    if kind not in types:
        kind = ""
    return render_template(
        "search/index.html", q=q, kind=kind, types=types, results=search(q, kind),
        all_limit=ALL_LIMIT,
    )
