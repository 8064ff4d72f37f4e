from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portal.audit.service import history
from portal.auth.access import get_or_404, requires
from portal.baremetals import evacuation, service
from portal.baremetals.forms import ImportForm, MoveForm, ServerForm, StatusForm
from portal.baremetals.lists import STATUS_LABELS, baremetals
from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.metrics.panels import page_panel
from portal.models import Baremetal, BaremetalGroup, Rack
from portal.web import list_page
from portal.web.crud import Crud
from portal.web.forms import options, show_errors

bp = Blueprint("baremetals", __name__, url_prefix="/servers")
crud = Crud("server", _l("Servers"), "baremetals", "server_id", service.ServerInvalid,
            new_title=_l("New server"), create_label=_l("Create server"),
            flash_rest=True, refuse_on_page=True)

@bp.route("/")
@requires("baremetals")
def list():  # noqa: A001
    return list_page(baremetals, "baremetals/list.html")


def _rack_choices():
    rows = db.session.execute(select(Rack.id, Rack.name, Rack.dc).order_by(Rack.name)).all()
    return options([(None, _("— not racked —")), *((r.id, f"{r.name} ({r.dc})") for r in rows)])


def _group_choices():
    rows = db.session.execute(
        select(BaremetalGroup.id, BaremetalGroup.name).order_by(BaremetalGroup.name)
    ).all()
    return options([(None, _("— no group —")), *((r.id, r.name) for r in rows)])


def _detail_page(server: Baremetal, status_form=None, move_form=None, code=200):
    status_form = status_form or StatusForm(status=server.status, formdata=None)
    move_form = move_form or MoveForm(group_id=server.group_id, formdata=None)
    move_form.group_id.choices = _group_choices()
    return render_template(
        "baremetals/detail.html", server=server, view=service.server_overview(server),
        events=history("baremetal", server.id), status_form=status_form, move_form=move_form,
        can_status=service.may_change_status(current_user, server),
        migrations=evacuation.progress("baremetal", server.id),
        utilisation=page_panel("baremetal", server),
    ), code


@bp.route("/<int:server_id>")
@requires("baremetals")
def detail(server_id: int):
    return _detail_page(get_or_404(Baremetal, server_id))


def _server_form(server: Baremetal | None = None) -> ServerForm:
    form = ServerForm(obj=server)
    if request.method == "GET" and server is None and request.args.get("rack_id"):
        # "Add a server here" from a rack elevation.
        form.rack_id.data = request.args.get("rack_id", type=int)
        form.rack_unit.data = request.args.get("unit", type=int)
    form.rack_id.choices = _rack_choices()
    if server is None:
        form.group_id.choices = _group_choices()
    else:
        del form.group_id
    return form


@bp.route("/new", methods=["GET", "POST"])
@requires("baremetals", "write")
def new():
    form = _server_form()
    return crud.form_page(form, None, lambda: service.create_server(form.fields()),
                          lambda server: _("Server %(name)s created.", name=server.name))


@bp.route("/<int:server_id>/edit", methods=["GET", "POST"])
@requires("baremetals", "write")
def edit(server_id: int):
    server = get_or_404(Baremetal, server_id)
    form = _server_form(server)
    return crud.form_page(
        form, server, lambda: service.update_server(server, form.fields(server.group_id)),
        lambda server: _("Server %(name)s saved.", name=server.name))


@bp.route("/<int:server_id>/status", methods=["POST"])
@requires("baremetals", "status")
def status(server_id: int):
    server = get_or_404(Baremetal, server_id)
    if not service.may_change_status(current_user, server):
        abort(403, _("Only operators and the server's maintainers change its status."))
    form = StatusForm()
    if form.validate_on_submit():
        try:
            service.change_status(server, form.status.data)
        except service.ServerInvalid as invalid:
            db.session.rollback()
            show_errors(form, invalid.errors, flash_rest=True)
        else:
            flash(_("Server %(name)s is now %(status)s.", name=server.name,
                    status=STATUS_LABELS.get(server.status, server.status)), "success")
            return redirect(url_for("baremetals.detail", server_id=server.id))
    return _detail_page(server, status_form=form, code=422)


@bp.route("/<int:server_id>/move", methods=["POST"])
@requires("baremetals", "write")
def move(server_id: int):
    server = get_or_404(Baremetal, server_id)
    form = MoveForm()
    if form.validate_on_submit():
        try:
            service.move_server(server, form.group_id.data)
        except service.ServerInvalid as invalid:
            db.session.rollback()
            show_errors(form, invalid.errors, flash_rest=True)
        else:
            if server.group:
                flash(_("Server %(name)s moved to %(group)s.", name=server.name,
                        group=server.group.name), "success")
            else:
                flash(_("Server %(name)s moved out of its group.", name=server.name), "success")
            return redirect(url_for("baremetals.detail", server_id=server.id))
    return _detail_page(server, move_form=form, code=422)


@bp.route("/<int:server_id>/delete", methods=["GET", "POST"])
@requires("baremetals", "write")
def delete(server_id: int):
    server = get_or_404(Baremetal, server_id)
    return crud.delete_page(server, lambda: service.delete_server(server),
                            _("Server %(name)s deleted.", name=server.name), "server")


@bp.route("/<int:server_id>/drain", methods=["GET", "POST"])
@requires("baremetals", "write")
def drain(server_id: int):
    """GET: the dry run as a preview; POST: evacuate."""
    server = get_or_404(Baremetal, server_id)
    back = url_for("baremetals.detail", server_id=server.id)
    if request.method == "POST":
        return drained(lambda: evacuation.evacuate(
            [server], current_user, label=("baremetal", server.id, server.name)), back)
    crumbs = [(_("Dashboard"), url_for("dashboard.index")),
              (_("Servers"), url_for("baremetals.list")), (server.name, back), (_("Drain"), None)]
    return render_template("evacuation/preview.html", plan=evacuation.preview([server]),
                           subject=server.name, crumbs=crumbs, back=back,
                           action=url_for("baremetals.drain", server_id=server.id))


def drained(execute, back: str):
    """Run an evacuation and say what it did, on the server's or rack's page."""
    try:
        done = execute()
    except evacuation.EvacuationRefused as refused:
        db.session.rollback()
        flash(str(refused), "danger")
        return redirect(back)
    if done.stuck:
        flash(_n("Draining: %(num)s VM migrating; %(stuck)s cannot move now.",
                 "Draining: %(num)s VMs migrating; %(stuck)s cannot move now.",
                 len(done.moves), stuck=len(done.stuck)), "warning")
    else:
        flash(_n("Draining: %(num)s VM migrating.", "Draining: %(num)s VMs migrating.",
                 len(done.moves)), "success")
    return redirect(back)


def returned(servers, back: str):
    try:
        done = evacuation.return_to_service(servers, current_user)
    except evacuation.EvacuationRefused as refused:
        db.session.rollback()
        flash(str(refused), "danger")
    else:
        flash(_("Back in service: %(names)s.", names=", ".join(s.name for s in done)), "success")
    return redirect(back)


@bp.route("/<int:server_id>/return", methods=["POST"])
@requires("baremetals", "write")
def return_to_service(server_id: int):
    server = get_or_404(Baremetal, server_id)
    return returned([server], url_for("baremetals.detail", server_id=server.id))


@bp.route("/import", methods=["GET", "POST"])
@requires("baremetals", "write")
def import_csv():
    form = ImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        try:
            if upload is not None and getattr(upload, "filename", ""):
                text = service.decode_upload(upload.read())
            else:
                text = form.text.data or ""
            result = service.import_servers(text)
        except service.ImportRefused as refused:
            db.session.rollback()
            problems = refused.problems
        else:
            flash(_("Imported: %(created)s created, %(updated)s updated, %(unchanged)s "
                    "unchanged.", created=len(result.created), updated=len(result.updated),
                    unchanged=result.unchanged), "success")
            return redirect(url_for("baremetals.list"))
    status = 422 if problems else 200
    return render_template(
        "baremetals/import.html", form=form, problems=problems,
        columns=service.IMPORT_COLUMNS, max_rows=service.MAX_IMPORT_ROWS,
    ), status


@bp.route("/import/template.csv")
@requires("baremetals", "write")
def import_template():
    return Response(
        service.csv_template(), mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="servers-import.csv"'},
    )
