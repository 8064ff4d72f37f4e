from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.audit.service import history
from portal.auth.access import (
    administered_tenant_ids,
    requires,
    visible_only,
    visible_or_404,
)
from portal.metrics.panels import page_panel
from portal.models import VM_ROLES, VM_STATUSES, Baremetal, Tenant, VirtualMachine
from portal.models import VirtualMachineSpecification as Flavor
from portal.provisioning.jobs import JobError
from portal.scheduler import Constraints
from portal.scheduler.reservation import PlacementRefused
from portal.vms import service
from portal.vms.forms import VmForm
from portal.web import list_page, render
from portal.web.forms import options as choices
from portal.web.forms import show_errors
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices, maintainer_filters, tenant_choices

bp = Blueprint("vms", __name__, url_prefix="/vms")

vms = Listing(
    name="vms",
    statement=lambda: visible_only(
        # No joins: the COUNT and the id query read only virtual_machine; a sort by a
        # related name joins just that table (Column.join).
        select(VirtualMachine)
        .options(
            joinedload(VirtualMachine.tenant),
            joinedload(VirtualMachine.spec),
            joinedload(VirtualMachine.baremetal),
            joinedload(VirtualMachine.cluster),
        ),
        VirtualMachine,
    ),
    columns=[
        Column("name", "Name", VirtualMachine.name),
        Column("tenant", "Tenant", Tenant.name, value=lambda v: v.tenant.name,
               join=VirtualMachine.tenant),
        Column("status", "Status", VirtualMachine.status),
        Column("role", "Role", VirtualMachine.role),
        Column("flavor", "Flavor", Flavor.name, value=lambda v: v.spec.name,
               join=VirtualMachine.spec),
        Column("server", "Server", Baremetal.name,
               value=lambda v: v.baremetal.name if v.baremetal else "",
               join=VirtualMachine.baremetal),
        Column("cluster", "Cluster", None, value=lambda v: v.cluster.name if v.cluster else ""),
        Column("cpu", "CPU", VirtualMachine.cpu, numeric=True),
        Column("memory", "Memory (GiB)", VirtualMachine.memory, numeric=True),
        Column("storage", "Storage (GiB)", VirtualMachine.storage, numeric=True),
        Column("created_at", "Created", VirtualMachine.created_at),
    ],
    search=[VirtualMachine.name],
    filters=[
        Filter("status", "Status", lambda s, v: s.where(VirtualMachine.status == v),
               lambda: enum_choices(VM_STATUSES)),
        Filter("role", "Role", lambda s, v: s.where(VirtualMachine.role == v),
               lambda: enum_choices(VM_ROLES)),
        Filter("tenant", "Tenant", lambda s, v: s.where(VirtualMachine.tenant_id == int(v)),
               tenant_choices),
        *maintainer_filters("virtual_machine", VirtualMachine.id),
    ],
    default_sort="-created_at",
)


@bp.route("/")
@requires("vms")
def list():  # noqa: A001
    return list_page(vms, "vms/list.html")


def _wizard_form() -> VmForm:
    """The wizard's form with its choices for the tenant and group currently chosen."""
    form = VmForm(request.form if request.method == "POST" else request.args)
    options = service.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    if form.tenant_id.data is None and options.tenants:
        form.tenant_id.data = options.tenants[0][0]
        options = service.wizard_options(current_user, form.tenant_id.data, form.group_id.data)
    form.tenant_id.choices = choices(options.tenants)
    form.group_id.choices = choices([(None, "— choose a group —"), *options.groups])
    form.spec_id.choices = choices([(None, "— choose a flavor —"), *options.flavors])
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
    """A preview when enough is chosen to place something; None until then."""
    if form.group_id.data is None or form.spec_id.data is None:
        return None
    try:
        req = _vm_request(form, check_names=False)
    except service.RequestInvalid:
        return None
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
                flash(refused.refusal.message, "error")
            else:
                if len(vms) == 1:
                    flash(f"VM {vms[0].name} placed on {vms[0].baremetal.name}; provisioning.",
                          "success")
                    return redirect(url_for("vms.detail", vm_id=vms[0].id))
                flash(f"{len(vms)} VMs placed; provisioning.", "success")
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
        flash(f"VM {vm.name} is being deleted; its resources are released once the agent "
              "confirms.", "success")
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
        flash(refused.refusal.message, "error")
    else:
        flash(f"Retrying {placed.name}.", "success")
    return redirect(url_for("vms.detail", vm_id=vm_id))
