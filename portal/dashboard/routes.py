from flask import Blueprint, render_template

from portal.auth.access import requires, tenant_ids
from portal.dashboard.service import estate_summary

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@requires("dashboard")
def index():
    return render_template("dashboard/index.html", summary=estate_summary(tenant_ids()))
