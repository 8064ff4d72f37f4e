from flask import Blueprint, render_template, request

from portal.auth.access import requires
from portal.maintainers.service import RESOURCE_ENDPOINTS
from portal.search.service import SEARCH_TYPES, search

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("/")
@requires("search")
def index():
    q = (request.args.get("q") or "").strip()[:200]
    kind = request.args.get("type") or ""
    if kind not in SEARCH_TYPES:
        kind = ""
    return render_template(
        "search/index.html", q=q, kind=kind, types=SEARCH_TYPES, results=search(q, kind),
        endpoints=RESOURCE_ENDPOINTS,
    )
