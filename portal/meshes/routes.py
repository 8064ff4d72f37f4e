from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import requires
from portal.models import MESH_STATUSES, MESH_TYPES, ServiceMesh
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices

bp = Blueprint("meshes", __name__, url_prefix="/meshes")

meshes = Listing(
    name="service-meshes",
    statement=lambda: select(ServiceMesh),
    columns=[
        Column("name", "Name", ServiceMesh.name),
        Column("mesh_type", "Type", ServiceMesh.mesh_type),
        Column("version", "Version", ServiceMesh.version),
        Column("status", "Status", ServiceMesh.status),
        Column("description", "Description", ServiceMesh.description),
    ],
    search=[ServiceMesh.name, ServiceMesh.version],
    filters=[
        Filter("mesh_type", "Type", lambda s, v: s.where(ServiceMesh.mesh_type == v),
               lambda: enum_choices(MESH_TYPES)),
        Filter("status", "Status", lambda s, v: s.where(ServiceMesh.status == v),
               lambda: enum_choices(MESH_STATUSES)),
    ],
)


@bp.route("/")
@requires("meshes")
def list():  # noqa: A001
    return list_page(meshes, "meshes/list.html")
