"""The flavors list (SPEC 8.2): its columns, search and filters, for the page and the API."""

from sqlalchemy import select

from portal.i18n import _l
from portal.models import VirtualMachineSpecification as Flavor
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values

flavors = Listing(
    name="flavors",
    statement=lambda: select(Flavor),
    columns=[
        Column("name", _l("Name"), Flavor.name),
        Column("cpu", _l("CPU"), Flavor.cpu, numeric=True),
        Column("memory", _l("Memory (GiB)"), Flavor.memory, numeric=True),
        Column("storage", _l("Storage (GiB)"), Flavor.storage, numeric=True),
        Column("generation", _l("Generation"), Flavor.generation, numeric=True),
        Column("is_active", _l("Active"), Flavor.is_active),
        Column("description", _l("Description"), Flavor.description),
    ],
    search=[Flavor.name, Flavor.description],
    filters=[
        Filter("active", _l("Availability"),
               lambda s, v: s.where(Flavor.is_active.is_(v == "yes")),
               lambda: [("yes", _l("Active")), ("no", _l("Retired"))]),
        Filter("generation", _l("Generation"),
               lambda s, v: s.where(Flavor.generation == int(v)),
               lambda: distinct_values(Flavor.generation)),
    ],
    default_sort="cpu",
)
