from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.audit.service import history
from portal.auth.access import (
    administered_tenant_ids,
    requires,
    visible_or_404,
)
from portal.i18n import _, _n
from portal.metrics.panels import page_panel
from portal.models import VirtualMachine
from portal.provisioning.jobs import JobError
from portal.scheduler import Constraints
from portal.scheduler.messages import (
    explanation_text,
    refusal_message,
    refusal_text,
    spread_text,
    strategy_name,
)
from portal.scheduler.reservation import PlacementRefused
from portal.vms import service
from portal.vms.forms import VmForm
from portal.vms.labels import enum_label
from portal.vms.lists import vm_page
from portal.web import list_page, render
from portal.web.forms import options as choices
from portal.web.forms import show_errors

bp = Blueprint("vms", __name__, url_prefix="/vms")
# The workloads' enum values in the reader's language, for every template.
bp.add_app_template_global(enum_label, "enum_label")
bp.add_app_template_global(refusal_text, "refusal_text")
bp.add_app_template_global(spread_text, "spread_text")
bp.add_app_template_global(explanation_text, "explanation_text")
bp.add_app_template_global(strategy_name, "strategy_name")

@bp.route("/")
@requires("vms")
def list():  # noqa: A001
    return list_page(vm_page, "vms/list.html")


def _wizard_form() -> VmForm:
    """The wizard's form with its choices for the tenant and group currently chosen."""
    form = VmForm(request.form if request.method == "POST" else request.args)
    options = service.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    if form.tenant_id.data is None and options.tenants:
        form.tenant_id.data = options.tenants[0][0]
        options = service.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    form.tenant_id.choices = choices(options.tenants)
    form.group_id.choices = choices([(None, _("— choose a group —")), *options.groups])
    form.spec_id.choices = choices([(None, _("— choose a flavor —")), *options.flavors])
    form.regions.choices = choices((r, r) for r in options.regions)
    form.dcs.choices = choices((d, d) for d in options.dcs)
    form.racks.choices = choices((r, r) for r in options.racks)
    form.exclude_racks.choices = choices((r, r) for r in options.racks)
    return form


def _vm_request(form: VmForm, check_names: bool = True) -> service.VmRequest:
    """The form's values as a request, or RequestInvalid; errors land on the form fields."""
    try:
        return service.build_request(
            current_user,
            tenant_id=form.tenant_id.data,
            group_id=form.group_id.data,
            spec_id=form.spec_id.data,
            name=form.name.data or "",
            count=form.count.data,
            strategy=form.strategy.data,
            anti_affinity=form.anti_affinity.data,
            constraints=Constraints(
                regions=tuple(form.regions.data or ()),
                dcs=tuple(form.dcs.data or ()),
                racks=tuple(form.racks.data or ()),
                exclude_racks=tuple(form.exclude_racks.data or ()),
            ),
            check_names=check_names,
        )
    except service.RequestInvalid as invalid:
        show_errors(form, invalid.errors)
        raise


def _preview_for(form: VmForm):
    """A preview when enough is chosen to place something; None until then; once a group
    and a flavor are chosen, what is wrong with the request (the reasons, live) rather
    than the starting hint."""
    if form.group_id.data is None or form.spec_id.data is None:
        return None
    try:
        req = _vm_request(form, check_names=False)
    except service.RequestInvalid as invalid:
        return service.Unplaceable([*invalid.errors.values()])
    return service.preview_vms(req)


@bp.route("/new", methods=["GET", "POST"])
@requires("vms", "create")
def new():
    form = _wizard_form()
    if request.method == "POST" and request.form.get("action") == "create":
        form.validate()
        if not form.errors:
            try:
                vms = service.create_vms(_vm_request(form), current_user)
            except service.RequestInvalid:
                pass
            except PlacementRefused as refused:
                flash(refusal_message(refused.refusal), "error")
            else:
                if len(vms) == 1:
                    flash(_("VM %(vm)s placed on %(server)s; provisioning.",
                            vm=vms[0].name, server=vms[0].baremetal.name), "success")
                    return redirect(url_for("vms.detail", vm_id=vms[0].id))
                flash(_n("%(num)s VM placed; provisioning.", "%(num)s VMs placed; provisioning.",
                         len(vms)), "success")
                return redirect(url_for("vms.list", q=form.name.data.strip()))
    return render("vms/new.html", "wizard", form=form, preview=_preview_for(form))


@bp.route("/preview", methods=["POST"])
@requires("vms", "create")
def preview():
    """The live placement preview of the wizard (HTMX); the same decision as creating."""
    form = _wizard_form()
    return render("vms/new.html", "preview", form=form, preview=_preview_for(form))


def _own_vm(vm_id: int) -> VirtualMachine:
    return visible_or_404(VirtualMachine, vm_id)


@bp.route("/<int:vm_id>")
@requires("vms")
def detail(vm_id: int):
    vm = _own_vm(vm_id)
    return render(
        "vms/detail.html", "status", vm=vm, jobs=service.vm_jobs(vm),
        events=history("virtual_machine", vm.id), can_act=_may_act_on(vm),
        utilisation=page_panel("vm", vm),
    )


def _may_act_on(vm: VirtualMachine) -> bool:
    allowed = administered_tenant_ids()
    return allowed is None or vm.tenant_id in allowed


@bp.route("/<int:vm_id>/delete", methods=["GET", "POST"])
@requires("vms", "delete")
def delete(vm_id: int):
    vm = _own_vm(vm_id)
    if not _may_act_on(vm):
        abort(404)
    if request.method == "GET":
        return render_template("vms/confirm_delete.html", vm=vm)
    try:
        service.delete_vm(vm, current_user)
    except JobError as error:
        flash(str(error), "error")
    else:
        flash(_("VM %(vm)s is being deleted; its resources are released once the agent "
                "confirms.", vm=vm.name), "success")
    return redirect(url_for("vms.detail", vm_id=vm.id))


@bp.route("/<int:vm_id>/retry", methods=["POST"])
@requires("vms", "create")
def retry(vm_id: int):
    vm = _own_vm(vm_id)
    if not _may_act_on(vm):
        abort(404)
    try:
        placed = service.retry_vm(vm, current_user)
    except JobError as error:
        flash(str(error), "error")
    except PlacementRefused as refused:
        flash(refusal_message(refused.refusal), "error")
    else:
        flash(_("Retrying %(vm)s.", vm=placed.name), "success")
    return redirect(url_for("vms.detail", vm_id=vm_id))
