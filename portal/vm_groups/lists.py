"""The VM group list: what the page and the API both run."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import scoped
from portal.i18n import _l
from portal.models import BaremetalGroup, Tenant, VirtualMachineSpecification, VmGroup
from portal.models.autoscaling import VM_GROUP_STATUSES
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices, tenant_choices

vm_groups = Listing(
    name="vm-groups",
    statement=lambda: scoped(
        select(VmGroup)
        .outerjoin(VmGroup.tenant).outerjoin(VmGroup.group).outerjoin(VmGroup.spec)
        .options(joinedload(VmGroup.tenant), joinedload(VmGroup.group),
                 joinedload(VmGroup.spec)),
        VmGroup.tenant_id,
    ),
    columns=[
        Column("name", _l("Name"), VmGroup.name),
        Column("tenant", _l("Tenant"), Tenant.name, value=lambda g: g.tenant.name),
        Column("group", _l("Group"), BaremetalGroup.name, value=lambda g: g.group.name),
        Column("flavor", _l("Flavor"), VirtualMachineSpecification.name,
               value=lambda g: g.spec.name),
        Column("size", _l("Members"), VmGroup.size, numeric=True),
        Column("anti_affinity", _l("Spread"), VmGroup.anti_affinity),
        Column("status", _l("Status"), VmGroup.status),
        Column("created_at", _l("Created"), VmGroup.created_at),
    ],
    search=[VmGroup.name],
    filters=[
        Filter("status", _l("Status"), lambda s, v: s.where(VmGroup.status == v),
               lambda: enum_choices(VM_GROUP_STATUSES)),
        Filter("tenant", _l("Tenant"), lambda s, v: s.where(VmGroup.tenant_id == int(v)),
               tenant_choices),
    ],
)
