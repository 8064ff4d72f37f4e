from flask import Blueprint, render_template

from portal.auth.access import can, signed_in, tenant_ids
from portal.dashboard.service import estate_summary, hot_spots

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@signed_in
def index():
    tenants = tenant_ids()
    summary = estate_summary(tenants, operator=can("audit"))
    return render_template("dashboard/index.html", summary=summary,
                           hot=hot_spots(staff=tenants is None))
