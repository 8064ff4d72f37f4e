from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import requires
from portal.models import VirtualMachineSpecification as Flavor
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing

bp = Blueprint("specs", __name__, url_prefix="/flavors")

flavors = Listing(
    name="flavors",
    statement=lambda: select(Flavor),
    columns=[
        Column("name", "Name", Flavor.name),
        Column("cpu", "CPU", Flavor.cpu, numeric=True),
        Column("memory", "Memory (GiB)", Flavor.memory, numeric=True),
        Column("storage", "Storage (GiB)", Flavor.storage, numeric=True),
        Column("generation", "Generation", Flavor.generation, numeric=True),
        Column("is_active", "Active", Flavor.is_active),
        Column("description", "Description", Flavor.description),
    ],
    search=[Flavor.name, Flavor.description],
    filters=[
        Filter("active", "Availability",
               lambda s, v: s.where(Flavor.is_active.is_(v == "yes")),
               lambda: [("yes", "Active"), ("no", "Retired")]),
    ],
    default_sort="cpu",
)


@bp.route("/")
@requires("specs")
def list():  # noqa: A001
    return list_page(flavors, "specs/list.html")
