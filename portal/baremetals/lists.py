"""The servers list (SPEC 8.2): its columns, search and filters, for the page and the API."""

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.i18n import _l
from portal.models import BAREMETAL_STATUSES, Baremetal, BaremetalGroup, Rack
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values, maintainer_filters, named_choices

# The stored statuses as a reader sees them (the glossary's "Statuses").
STATUS_LABELS = {"active": _l("active"), "maintenance": _l("maintenance"),
                 "offline": _l("offline"), "decommissioned": _l("decommissioned")}

baremetals = Listing(
    name="servers",
    statement=lambda: select(Baremetal)
    .options(joinedload(Baremetal.rack), joinedload(Baremetal.group)),
    columns=[
        Column("name", _l("Name"), Baremetal.name),
        Column("serial", _l("Serial"), Baremetal.serial),
        Column("status", _l("Status"), Baremetal.status),
        Column("region", _l("Region"), Baremetal.region),
        Column("dc", _l("DC"), Baremetal.dc),
        Column("rack", _l("Rack"), Rack.name, value=lambda b: b.rack.name if b.rack else "",
               join=Baremetal.rack),
        Column("rack_unit", _l("Unit"), Baremetal.rack_unit, numeric=True),
        Column("size_u", _l("Size (U)"), Baremetal.size_u, numeric=True),
        Column("group", _l("Group"), BaremetalGroup.name,
               value=lambda b: b.group.name if b.group else "", join=Baremetal.group),
        Column("available_cpu", _l("Free CPU"), Baremetal.available_cpu, numeric=True),
        Column("total_cpu", _l("CPU"), Baremetal.total_cpu, numeric=True),
        Column("available_memory", _l("Free memory (GiB)"), Baremetal.available_memory,
               numeric=True),
        Column("total_memory", _l("Memory (GiB)"), Baremetal.total_memory, numeric=True),
        Column("available_storage", _l("Free storage (GiB)"), Baremetal.available_storage,
               numeric=True),
        Column("total_storage", _l("Storage (GiB)"), Baremetal.total_storage, numeric=True),
    ],
    search=[Baremetal.name, Baremetal.serial],
    filters=[
        Filter("status", _l("Status"), lambda s, v: s.where(Baremetal.status == v),
               lambda: [(s, str(STATUS_LABELS.get(s, s))) for s in BAREMETAL_STATUSES]),
        Filter("region", _l("Region"), lambda s, v: s.where(Baremetal.region == v),
               lambda: distinct_values(Baremetal.region)),
        Filter("dc", _l("DC"), lambda s, v: s.where(Baremetal.dc == v),
               lambda: distinct_values(Baremetal.dc)),
        Filter("rack", _l("Rack"), lambda s, v: s.where(Baremetal.rack_id == int(v)),
               lambda: named_choices(Rack)),
        Filter("group", _l("Group"), lambda s, v: s.where(Baremetal.group_id == int(v)),
               lambda: named_choices(BaremetalGroup)),
        *maintainer_filters("baremetal", Baremetal.id),
    ],
)
