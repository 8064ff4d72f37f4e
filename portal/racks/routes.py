from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import requires
from portal.models import Rack
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values

bp = Blueprint("racks", __name__, url_prefix="/racks")

racks = Listing(
    name="racks",
    statement=lambda: select(Rack),
    columns=[
        Column("name", "Name", Rack.name),
        Column("region", "Region", Rack.region),
        Column("dc", "DC", Rack.dc),
        Column("location", "Location", Rack.location),
        Column("bgp_asn", "ASN", Rack.bgp_asn, numeric=True),
        Column("height_u", "Height (U)", Rack.height_u, numeric=True),
    ],
    search=[Rack.name, Rack.location, Rack.region, Rack.dc],
    filters=[
        Filter("region", "Region", lambda s, v: s.where(Rack.region == v),
               lambda: distinct_values(Rack.region)),
        Filter("dc", "DC", lambda s, v: s.where(Rack.dc == v), lambda: distinct_values(Rack.dc)),
    ],
)


@bp.route("/")
@requires("racks")
def list():  # noqa: A001 - the endpoint is racks.list
    return list_page(racks, "racks/list.html")
