"""Virtual machines: list, read, create (placed by the scheduler), delete, retry."""

from __future__ import annotations

from typing import Literal

from flask import url_for
from flask_login import current_user
from pydantic import Field

from portal.api import api, waiting
from portal.api.core import Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import not_found
from portal.api.schemas import Id, Input, Stamped, page_of
from portal.auth.access import administered_tenant_ids, visible_or_404
from portal.models import VM_ROLES, VM_STATUSES, VirtualMachine
from portal.scheduler import STRATEGIES, Constraints
from portal.vms import service
from portal.vms.lists import vms as vm_list

TAGS = ("vms",)
Strategy = Literal[tuple(sorted(STRATEGIES))]  # type: ignore[valid-type]
AntiAffinity = Literal["soft", "hard", "none"]
ANTI_AFFINITY_HELP = (
    "How the nodes share servers (SPEC 8.2): soft spreads them over as many servers as have "
    "room, hard allows one per server or refuses, none packs densely."
)
Label = str  # region, dc and rack names
MAX_CONSTRAINTS = 100


class Vm(Stamped):
    name: str
    tenant_id: int
    baremetal_id: int | None = Field(description="The server it is placed on.")
    spec_id: int
    cpu: int
    memory: int
    storage: int
    k8s_cluster_id: int | None
    role: Literal[VM_ROLES]  # type: ignore[valid-type]
    status: Literal[VM_STATUSES]  # type: ignore[valid-type]
    status_message: str
    requested_by: int | None


VmPage = page_of(Vm)


class ConstraintsIn(Input):
    """Where the VMs may go; empty lists mean anywhere. ``exclude_racks`` wins."""

    regions: list[str] = Field(default_factory=list, max_length=MAX_CONSTRAINTS)
    dcs: list[str] = Field(default_factory=list, max_length=MAX_CONSTRAINTS)
    racks: list[str] = Field(default_factory=list, max_length=MAX_CONSTRAINTS)
    exclude_racks: list[str] = Field(default_factory=list, max_length=MAX_CONSTRAINTS)

    def plain(self) -> Constraints:
        return Constraints(tuple(self.regions), tuple(self.dcs), tuple(self.racks),
                           tuple(self.exclude_racks))


class VmCreate(Input):
    name: str = Field(max_length=255, description=(
        "1–63 letters, digits, '.', '-', '_'; with count > 1 the VMs are NAME-1 … NAME-N."))
    tenant_id: Id
    group_id: Id
    spec_id: Id = Field(description="The flavor.")
    count: int = Field(1, ge=1, le=service.MAX_COUNT)
    strategy: Strategy | None = Field(None, description="Default: the portal's default.")
    constraints: ConstraintsIn = Field(default_factory=ConstraintsIn)
    anti_affinity: AntiAffinity = Field("soft", description=ANTI_AFFINITY_HELP)

    def build(self, check_names: bool = True) -> service.VmRequest:
        """The service's request (RequestInvalid names every bad field)."""
        return service.build_request(
            current_user._get_current_object(), tenant_id=self.tenant_id,
            group_id=self.group_id, spec_id=self.spec_id, name=self.name, count=self.count,
            strategy=self.strategy, constraints=self.constraints.plain(),
            check_names=check_names, anti_affinity=self.anti_affinity,
        )


VmQuery = list_query("VmQuery", vm_list, (
    ApiFilter("status", "status", Literal[VM_STATUSES]),  # type: ignore[valid-type]
    ApiFilter("role", "role", Literal[VM_ROLES]),  # type: ignore[valid-type]
    ApiFilter("tenant_id", "tenant", int, "Only this tenant's VMs."),
))


def own_vm(vm_id: int) -> VirtualMachine:
    """A VM the user may see (another tenant's is not found)."""
    return visible_or_404(VirtualMachine, vm_id)


def acted_on_vm(vm_id: int) -> VirtualMachine:
    """A VM the user may act on: tenant admins only their own tenants' VMs."""
    vm = own_vm(vm_id)
    allowed = administered_tenant_ids()
    if allowed is not None and vm.tenant_id not in allowed:
        raise not_found()
    return vm


@api.operation("GET", "/vms", summary="List VMs", tags=TAGS, access=Access("vms"),
               query=VmQuery, response=VmPage)
def list_vms(query):
    """VMs the token may see, newest first by default; filters as on the VM list page.
    Deleted VMs are listed too (a client follows what it deleted; ``status`` narrows), where
    the page and the dashboard leave them out unless asked."""
    return run(vm_list, query)


VmWait = waiting.wait_query("VmWait", VM_STATUSES)
# Where a VM stays until someone acts (a retry or a delete is a new request).
VM_FINAL = ("error", "deleted")


@api.operation("GET", "/vms/{vm_id}", summary="Get a VM", tags=TAGS, access=Access("vms"),
               query=VmWait, response=Vm, headers=waiting.HEADERS)
def get_vm(vm_id: int, query):
    """With ``wait_for``, answers once the VM has that status; ``error`` and ``deleted``
    are final (Wait-Result ``final``)."""
    return waiting.read(VirtualMachine, own_vm(vm_id), query, VM_FINAL)


@api.operation("POST", "/vms", summary="Create VMs", tags=TAGS,
               access=Access("vms", "create"), body=VmCreate, response=VmPage, status=201,
               errors=(409,))
def create_vms(body: VmCreate):
    """Place and create ``count`` identical VMs in one transaction, all or nothing; they
    start ``provisioning``. A refusal answers 409 with ``no_quota``, ``quota_exceeded`` or
    ``insufficient_capacity`` and the numbers behind it, as the wizard shows."""
    created = service.create_vms(body.build(), current_user._get_current_object())
    location = url_for("api.get_vm", vm_id=created[0].id)
    return {"items": created, "total": len(created)}, {"Location": location}


@api.operation("DELETE", "/vms/{vm_id}", summary="Delete a VM", tags=TAGS,
               access=Access("vms", "delete"), response=Vm, status=202, errors=(409,))
def delete_vm(vm_id: int):
    """The VM becomes ``deleting`` (still holding its resources) until an agent confirms;
    a failed VM is deleted at once. Nodes of a cluster are removed by scaling it."""
    vm = acted_on_vm(vm_id)
    service.delete_vm(vm, current_user._get_current_object())
    return vm


@api.operation("POST", "/vms/{vm_id}/retry", summary="Retry a failed VM", tags=TAGS,
               access=Access("vms", "create"), response=Vm, status=202, errors=(409,))
def retry_vm(vm_id: int):
    """Place a failed VM again and re-provision it (or retry a failed delete)."""
    vm = acted_on_vm(vm_id)
    return service.retry_vm(vm, current_user._get_current_object())
