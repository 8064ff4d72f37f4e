from flask import Blueprint, render_template, request

from portal.auth.access import requires
from portal.search.service import ALL_LIMIT, readable_types, search
from portal.vms.lists import SHOW_DELETED, deleted_shown

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("/")
@requires("search")
def index():
    q = (request.args.get("q") or "").strip()[:200]
    types = readable_types()
    kind = request.args.get("type") or ""
    if kind not in types:
        kind = ""
    deleted = deleted_shown(request.args)
    return render_template(
        "search/index.html", q=q, kind=kind, types=types, all_limit=ALL_LIMIT,
        results=search(q, kind, deleted), deleted=SHOW_DELETED if deleted else None,
        show_deleted=SHOW_DELETED,
    )
