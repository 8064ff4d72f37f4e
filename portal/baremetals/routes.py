from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import requires
from portal.models import BAREMETAL_STATUSES, Baremetal, BaremetalGroup, Rack
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values, enum_choices, named_choices

bp = Blueprint("baremetals", __name__, url_prefix="/servers")

baremetals = Listing(
    name="servers",
    statement=lambda: select(Baremetal)
    .outerjoin(Baremetal.rack)
    .outerjoin(Baremetal.group)
    .options(joinedload(Baremetal.rack), joinedload(Baremetal.group)),
    columns=[
        Column("name", "Name", Baremetal.name),
        Column("serial", "Serial", Baremetal.serial),
        Column("status", "Status", Baremetal.status),
        Column("region", "Region", Baremetal.region),
        Column("dc", "DC", Baremetal.dc),
        Column("rack", "Rack", Rack.name, value=lambda b: b.rack.name if b.rack else ""),
        Column("rack_unit", "Unit", Baremetal.rack_unit, numeric=True),
        Column("group", "Group", BaremetalGroup.name,
               value=lambda b: b.group.name if b.group else ""),
        Column("available_cpu", "Free CPU", Baremetal.available_cpu, numeric=True),
        Column("total_cpu", "CPU", Baremetal.total_cpu, numeric=True),
        Column("available_memory", "Free memory (GiB)", Baremetal.available_memory, numeric=True),
        Column("total_memory", "Memory (GiB)", Baremetal.total_memory, numeric=True),
        Column("available_storage", "Free storage (GiB)", Baremetal.available_storage,
               numeric=True),
        Column("total_storage", "Storage (GiB)", Baremetal.total_storage, numeric=True),
    ],
    search=[Baremetal.name, Baremetal.serial],
    filters=[
        Filter("status", "Status", lambda s, v: s.where(Baremetal.status == v),
               lambda: enum_choices(BAREMETAL_STATUSES)),
        Filter("region", "Region", lambda s, v: s.where(Baremetal.region == v),
               lambda: distinct_values(Baremetal.region)),
        Filter("dc", "DC", lambda s, v: s.where(Baremetal.dc == v),
               lambda: distinct_values(Baremetal.dc)),
        Filter("rack", "Rack", lambda s, v: s.where(Baremetal.rack_id == int(v)),
               lambda: named_choices(Rack)),
        Filter("group", "Group", lambda s, v: s.where(Baremetal.group_id == int(v)),
               lambda: named_choices(BaremetalGroup)),
    ],
)


@bp.route("/")
@requires("baremetals")
def list():  # noqa: A001
    return list_page(baremetals, "baremetals/list.html")
