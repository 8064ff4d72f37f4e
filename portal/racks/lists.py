"""The racks list (SPEC 8.2): its columns, search and filters, for the page and the API."""

from flask import g
from sqlalchemy import select

from portal.extensions import db
from portal.i18n import _l
from portal.models import Rack
from portal.racks import service
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values, maintainer_filters


def _usage(rack: Rack) -> service.RackUsage:
    """Usage for the CSV export: every rack's, read once per request."""
    if "_rack_usage" not in g:
        g._rack_usage = service.rack_usage(db.session.scalars(select(Rack)).all())
    return g._rack_usage[rack.id]


racks = Listing(
    name="racks",
    statement=lambda: select(Rack),
    columns=[
        Column("name", _l("Name"), Rack.name),
        Column("region", _l("Region"), Rack.region),
        Column("dc", _l("DC"), Rack.dc),
        Column("location", _l("Location"), Rack.location),
        Column("bgp_asn", _l("ASN"), Rack.bgp_asn, numeric=True),
        Column("height_u", _l("Height (U)"), Rack.height_u, numeric=True),
        Column("servers", _l("Servers"), None, numeric=True, value=lambda r: _usage(r).servers),
        Column("units_used", _l("Units used"), service.units_used_sort(), numeric=True,
               value=lambda r: round(_usage(r).units_pct, 1)),
        Column("cpu_allocated", _l("CPU allocated"), service.allocated_sort("cpu"), numeric=True,
               value=lambda r: round(_usage(r).pct("cpu"), 1)),
        Column("memory_allocated", _l("Memory allocated"), service.allocated_sort("memory"),
               numeric=True, value=lambda r: round(_usage(r).pct("memory"), 1)),
    ],
    search=[Rack.name, Rack.location, Rack.region, Rack.dc],
    filters=[
        Filter("region", _l("Region"), lambda s, v: s.where(Rack.region == v),
               lambda: distinct_values(Rack.region)),
        Filter("dc", _l("DC"), lambda s, v: s.where(Rack.dc == v),
               lambda: distinct_values(Rack.dc)),
        *maintainer_filters("rack", Rack.id),
    ],
)
