"""The VM list: what the page and the API both run.

The API lists every VM its filters ask for, deleted ones included (its documented
behaviour). The page hides deleted VMs unless the reader asks for them — the status filter
set to "deleted", or "show deleted" (``deleted=shown``): months of deleted VMs otherwise
fill the list and its count."""

from __future__ import annotations

from dataclasses import replace

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import visible_only
from portal.i18n import _l
from portal.models import VM_ROLES, VM_STATUSES, Baremetal, Tenant, VirtualMachine
from portal.models import VirtualMachineSpecification as Flavor
from portal.vms.labels import labelled_choices
from portal.web.listing import Column, Filter, Listing
from portal.web.options import maintainer_filters, tenant_choices


def _statement():
    return visible_only(
        select(VirtualMachine)
        # No joins: the COUNT and the id query read only virtual_machine; a sort by a
        # related name joins just that table (Column.join).
        .options(
            joinedload(VirtualMachine.tenant),
            joinedload(VirtualMachine.spec),
            joinedload(VirtualMachine.baremetal),
            joinedload(VirtualMachine.cluster),
        ),
        VirtualMachine,
    )


vms = Listing(
    name="vms",
    statement=_statement,
    columns=[
        Column("name", _l("Name"), VirtualMachine.name),
        Column("tenant", _l("Tenant"), Tenant.name, value=lambda v: v.tenant.name,
               join=VirtualMachine.tenant),
        Column("status", _l("Status"), VirtualMachine.status),
        Column("role", _l("Role"), VirtualMachine.role),
        Column("flavor", _l("Flavor"), Flavor.name, value=lambda v: v.spec.name,
               join=VirtualMachine.spec),
        Column("server", _l("Server"), Baremetal.name,
               value=lambda v: v.baremetal.name if v.baremetal else "",
               join=VirtualMachine.baremetal),
        Column("cluster", _l("Cluster"), None,
               value=lambda v: v.cluster.name if v.cluster else ""),
        Column("cpu", _l("CPU"), VirtualMachine.cpu, numeric=True),
        Column("memory", _l("Memory (GiB)"), VirtualMachine.memory, numeric=True),
        Column("storage", _l("Storage (GiB)"), VirtualMachine.storage, numeric=True),
        Column("created_at", _l("Created"), VirtualMachine.created_at),
    ],
    search=[VirtualMachine.name],
    filters=[
        Filter("status", _l("Status"), lambda s, v: s.where(VirtualMachine.status == v),
               labelled_choices("status", VM_STATUSES)),
        Filter("role", _l("Role"), lambda s, v: s.where(VirtualMachine.role == v),
               labelled_choices("vm_role", VM_ROLES)),
        Filter("tenant", _l("Tenant"), lambda s, v: s.where(VirtualMachine.tenant_id == int(v)),
               tenant_choices),
        *maintainer_filters("virtual_machine", VirtualMachine.id),
    ],
    default_sort="-created_at",
)

SHOW_DELETED = "shown"


def deleted_shown(args) -> bool:
    """Whether the page's reader asked to see deleted VMs."""
    return args.get("status") == "deleted" or args.get("deleted") == SHOW_DELETED


def _page_statement():
    stmt = _statement()
    if not deleted_shown(request.args):
        stmt = stmt.where(VirtualMachine.status != "deleted")
    return stmt


# The page's list: the same columns and filters, deleted VMs hidden unless asked for.
vm_page = replace(
    vms,
    statement=_page_statement,
    filters=[
        *vms.filters,
        Filter("deleted", _l("Deleted VMs"), lambda s, v: s,
               lambda: [(SHOW_DELETED, str(_l("Show deleted")))]),
    ],
)
