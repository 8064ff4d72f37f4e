from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import get_or_404, requires, scoped
from portal.models import VM_ROLES, VM_STATUSES, Baremetal, Tenant, VirtualMachine
from portal.models import VirtualMachineSpecification as Flavor
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices, tenant_choices

bp = Blueprint("vms", __name__, url_prefix="/vms")

vms = Listing(
    name="vms",
    statement=lambda: scoped(
        select(VirtualMachine)
        .join(VirtualMachine.tenant)
        .join(VirtualMachine.spec)
        .outerjoin(VirtualMachine.baremetal)
        .options(
            joinedload(VirtualMachine.tenant),
            joinedload(VirtualMachine.spec),
            joinedload(VirtualMachine.baremetal),
            joinedload(VirtualMachine.cluster),
        ),
        VirtualMachine.tenant_id,
    ),
    columns=[
        Column("name", "Name", VirtualMachine.name),
        Column("tenant", "Tenant", Tenant.name, value=lambda v: v.tenant.name),
        Column("status", "Status", VirtualMachine.status),
        Column("role", "Role", VirtualMachine.role),
        Column("flavor", "Flavor", Flavor.name, value=lambda v: v.spec.name),
        Column("server", "Server", Baremetal.name,
               value=lambda v: v.baremetal.name if v.baremetal else ""),
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
    ],
    default_sort="-created_at",
)


@bp.route("/")
@requires("vms")
def list():  # noqa: A001
    return list_page(vms, "vms/list.html")


@bp.route("/<int:vm_id>")
@requires("vms")
def detail(vm_id: int):
    vm = get_or_404(VirtualMachine, vm_id, VirtualMachine.tenant_id)
    return render_template("vms/detail.html", vm=vm)
