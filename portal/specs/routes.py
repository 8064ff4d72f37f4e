from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.access import can, get_or_404, requires
from portal.i18n import _, _l
from portal.models import VirtualMachineSpecification as Flavor
from portal.specs import service
from portal.specs.forms import FlavorForm
from portal.specs.lists import flavors
from portal.web import list_page
from portal.web.crud import Crud

bp = Blueprint("specs", __name__, url_prefix="/flavors")
crud = Crud("flavor", _l("Flavors"), "specs", "spec_id", service.FlavorInvalid,
            new_title=_l("New flavor"), create_label=_l("Create flavor"))

@bp.route("/")
@requires("specs")
def list():  # noqa: A001
    return list_page(flavors, "specs/list.html")


@bp.route("/<int:spec_id>")
@requires("specs")
def detail(spec_id: int):
    flavor = get_or_404(Flavor, spec_id)
    return render_template("specs/detail.html", flavor=flavor, editable=can("specs", "write"),
                           **service.flavor_overview(flavor))


@bp.route("/new", methods=["GET", "POST"])
@requires("specs", "write")
def new():
    form = FlavorForm()
    return crud.form_page(form, None, lambda: service.create_flavor(form.data, current_user),
                          lambda flavor: _("Flavor %(name)s created.", name=flavor.name))


@bp.route("/<int:spec_id>/edit", methods=["GET", "POST"])
@requires("specs", "write")
def edit(spec_id: int):
    flavor = get_or_404(Flavor, spec_id)
    form = FlavorForm(obj=flavor)
    return crud.form_page(
        form, flavor, lambda: service.update_flavor(flavor, form.data, current_user),
        lambda flavor: _("Flavor %(name)s saved. Existing VMs keep the resources they were "
                         "placed with.", name=flavor.name))


@bp.route("/<int:spec_id>/retire", methods=["POST"])
@requires("specs", "write")
def retire(spec_id: int):
    flavor = get_or_404(Flavor, spec_id)
    if service.set_active(flavor, False, current_user):
        flash(_("Flavor %(name)s retired: it stays for history and can no longer be "
                "chosen.", name=flavor.name), "success")
    return redirect(url_for("specs.detail", spec_id=flavor.id))


@bp.route("/<int:spec_id>/restore", methods=["POST"])
@requires("specs", "write")
def restore(spec_id: int):
    flavor = get_or_404(Flavor, spec_id)
    if service.set_active(flavor, True, current_user):
        flash(_("Flavor %(name)s is offered again.", name=flavor.name), "success")
    return redirect(url_for("specs.detail", spec_id=flavor.id))
