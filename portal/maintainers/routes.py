from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import requires
from portal.maintainers.service import RESOURCE_LABELS, assignments_of
from portal.models import MAINTAINER_STATUSES, Maintainer
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices

bp = Blueprint("maintainers", __name__, url_prefix="/maintainers")

maintainers = Listing(
    name="maintainers",
    statement=lambda: select(Maintainer),
    columns=[
        Column("name", "Name", Maintainer.name),
        Column("account", "Account", Maintainer.account),
        Column("email", "Email", Maintainer.email),
        Column("phone", "Phone", Maintainer.phone),
        Column("status", "Status", Maintainer.status),
    ],
    search=[Maintainer.name, Maintainer.account, Maintainer.email],
    filters=[
        Filter("status", "Status", lambda s, v: s.where(Maintainer.status == v),
               lambda: enum_choices(MAINTAINER_STATUSES)),
    ],
)


@bp.route("/")
@requires("maintainers")
def list():  # noqa: A001
    return list_page(maintainers, "maintainers/list.html")


@bp.route("/my-assignments")
@requires("assignments")
def my_assignments():
    grouped = assignments_of(current_user.maintainer)
    return render_template(
        "maintainers/my_assignments.html", grouped=grouped, labels=RESOURCE_LABELS
    )
