"""VM group pages: list, create, detail with its members, resize by hand, delete."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.audit.service import history
from portal.auth.access import requires
from portal.autoscaling.service import may_change
from portal.extensions import db
from portal.i18n import _
from portal.models import ScalingPolicy, VmGroup
from portal.scheduler.reservation import PlacementRefused
from portal.vm_groups import service
from portal.vm_groups.forms import ResizeForm, VmGroupForm
from portal.vm_groups.lists import vm_groups
from portal.vms import service as vms
from portal.web import list_page, render
from portal.web.forms import options, show_errors

bp = Blueprint("vm_groups", __name__, url_prefix="/vm-groups")


def _group_or_404(vm_group_id: int) -> VmGroup:
    found = db.session.scalar(vm_groups.statement().where(VmGroup.id == vm_group_id))
    if found is None:
        abort(404)
    return found


def _changeable_or_404(vm_group_id: int) -> VmGroup:
    found = _group_or_404(vm_group_id)
    if not may_change(found):
        abort(404)
    return found


@bp.route("/")
@requires("vm_groups")
def list():  # noqa: A001
    return list_page(vm_groups, "vm_groups/list.html")


def _form() -> VmGroupForm:
    form = VmGroupForm(request.form if request.method == "POST" else request.args)
    choices = vms.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    if form.tenant_id.data is None and choices.tenants:
        form.tenant_id.data = choices.tenants[0][0]
        choices = vms.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    form.tenant_id.choices = options(choices.tenants)
    form.group_id.choices = options([(None, _("— choose a group —")), *choices.groups])
    form.spec_id.choices = options([(None, _("— choose a flavor —")), *choices.flavors])
    return form


@bp.route("/new", methods=["GET", "POST"])
@requires("vm_groups", "write")
def new():
    form = _form()
    status = 200
    if request.method == "POST" and request.form.get("action") == "create":
        if form.validate():
            try:
                vm_group = service.create_group(service.build_request(
                    current_user, name=form.name.data or "", tenant_id=form.tenant_id.data,
                    group_id=form.group_id.data, spec_id=form.spec_id.data,
                    size=form.size.data, anti_affinity=form.anti_affinity.data,
                ), current_user)
            except vms.RequestInvalid as invalid:
                show_errors(form, invalid.errors)
            except PlacementRefused as refused:
                form.form_errors.append(refused.refusal.message)
            else:
                flash(_("VM group %(name)s: %(size)s members placed; provisioning.",
                        name=vm_group.name, size=form.size.data), "success")
                return redirect(url_for("vm_groups.detail", vm_group_id=vm_group.id))
        status = 422
    return render_template("vm_groups/new.html", form=form), status


@bp.route("/<int:vm_group_id>")
@requires("vm_groups")
def detail(vm_group_id: int):
    vm_group = _group_or_404(vm_group_id)
    policy = db.session.scalar(select(ScalingPolicy).where(
        ScalingPolicy.vm_group_id == vm_group.id))
    resize = ResizeForm(data={"size": vm_group.size})
    return render("vm_groups/detail.html", "members", vm_group=vm_group,
                  members=service.members(vm_group), policy=policy, resize=resize,
                  editable=may_change(vm_group) and vm_group.status == "active",
                  events=history("vm_group", vm_group.id))


@bp.route("/<int:vm_group_id>/resize", methods=["POST"])
@requires("vm_groups", "write")
def resize(vm_group_id: int):
    vm_group = _changeable_or_404(vm_group_id)
    form = ResizeForm()
    if not form.validate():
        flash(" ".join(form.size.errors), "error")
        return redirect(url_for("vm_groups.detail", vm_group_id=vm_group_id))
    try:
        changed = service.resize(vm_group, form.size.data, current_user)
    except service.VmGroupError as error:
        flash(str(error), "error")
    except PlacementRefused as refused:
        flash(refused.refusal.message, "error")
    else:
        names = ", ".join(vm.name for vm in changed)
        flash(_("Resized to %(size)s members (%(names)s).", size=form.size.data, names=names),
              "success")
    return redirect(url_for("vm_groups.detail", vm_group_id=vm_group_id))


@bp.route("/<int:vm_group_id>/delete", methods=["GET", "POST"])
@requires("vm_groups", "write")
def delete(vm_group_id: int):
    vm_group = _changeable_or_404(vm_group_id)
    if request.method == "GET":
        return render_template("vm_groups/confirm_delete.html", vm_group=vm_group,
                               members=service.live_members(vm_group))
    try:
        service.delete_group(vm_group, current_user)
    except service.VmGroupError as error:
        flash(str(error), "error")
    else:
        flash(_("VM group %(name)s is being deleted with its members and its scaling "
                "policy.", name=vm_group.name), "success")
    return redirect(url_for("vm_groups.detail", vm_group_id=vm_group_id))
