from flask import Blueprint, render_template, request, url_for
from flask_login import current_user

from portal.audit.service import history
from portal.auth.access import get_or_404, requires
from portal.baremetals import evacuation
from portal.baremetals import routes as server_pages
from portal.i18n import _, _l
from portal.metrics.panels import page_panel
from portal.models import Rack
from portal.racks import service
from portal.racks.forms import RackForm
from portal.racks.lists import racks
from portal.web import list_page
from portal.web.crud import Crud

bp = Blueprint("racks", __name__, url_prefix="/racks")
crud = Crud("rack", _l("Racks"), "racks", "rack_id", service.RackInvalid,
            new_title=_l("New rack"), create_label=_l("Create rack"),
            flash_rest=True, refuse_on_page=True)


@bp.route("/")
@requires("racks")
def list():  # noqa: A001 - the endpoint is racks.list
    return list_page(racks, "racks/list.html", usage_of=service.rack_usage)


@bp.route("/<int:rack_id>")
@requires("racks")
def detail(rack_id: int):
    rack = get_or_404(Rack, rack_id)
    return render_template("racks/detail.html", rack=rack, view=service.rack_overview(rack),
                           events=history("rack", rack.id),
                           migrations=evacuation.progress("rack", rack.id),
                           utilisation=page_panel("rack", rack))


@bp.route("/<int:rack_id>/drain", methods=["GET", "POST"])
@requires("baremetals", "write")
def drain(rack_id: int):
    """GET: the dry run of draining every server of the rack; POST: evacuate."""
    rack = get_or_404(Rack, rack_id)
    back = url_for("racks.detail", rack_id=rack.id)
    servers = evacuation.servers_of_rack(rack)
    if request.method == "POST":
        return server_pages.drained(lambda: evacuation.evacuate(
            servers, current_user, label=("rack", rack.id, rack.name)), back)
    crumbs = [(_("Dashboard"), url_for("dashboard.index")), (_("Racks"), url_for("racks.list")),
              (rack.name, back), (_("Drain"), None)]
    return render_template("evacuation/preview.html", plan=evacuation.preview(servers),
                           subject=_("rack %(name)s", name=rack.name), crumbs=crumbs, back=back,
                           action=url_for("racks.drain", rack_id=rack.id))


@bp.route("/<int:rack_id>/return", methods=["POST"])
@requires("baremetals", "write")
def return_to_service(rack_id: int):
    rack = get_or_404(Rack, rack_id)
    return server_pages.returned(evacuation.servers_of_rack(rack),
                                 url_for("racks.detail", rack_id=rack.id))


@bp.route("/new", methods=["GET", "POST"])
@requires("racks", "write")
def new():
    form = RackForm()
    return crud.form_page(form, None, lambda: service.create_rack(form.fields()),
                          lambda rack: _("Rack %(name)s created.", name=rack.name))


@bp.route("/<int:rack_id>/edit", methods=["GET", "POST"])
@requires("racks", "write")
def edit(rack_id: int):
    rack = get_or_404(Rack, rack_id)
    form = RackForm(obj=rack)
    return crud.form_page(form, rack, lambda: service.update_rack(rack, form.fields()),
                          lambda rack: _("Rack %(name)s saved.", name=rack.name))


@bp.route("/<int:rack_id>/delete", methods=["GET", "POST"])
@requires("racks", "write")
def delete(rack_id: int):
    rack = get_or_404(Rack, rack_id)
    return crud.delete_page(rack, lambda: service.delete_rack(rack),
                            _("Rack %(name)s deleted.", name=rack.name), "rack")
