from flask import Blueprint, render_template

from portal.auth.access import can, signed_in, tenant_ids
from portal.dashboard.service import estate_summary

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@signed_in
def index():
    summary = estate_summary(tenant_ids(), operator=can("audit"))
    return render_template("dashboard/index.html", summary=summary)
