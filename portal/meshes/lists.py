"""The service mesh list: what the page runs (and an API would)."""

from __future__ import annotations

from sqlalchemy import select

from portal.i18n import _l
from portal.models import MESH_STATUSES, MESH_TYPES, ServiceMesh
from portal.vms.labels import labelled_choices
from portal.web.listing import Column, Filter, Listing

meshes = Listing(
    name="service-meshes",
    statement=lambda: select(ServiceMesh),
    columns=[
        Column("name", _l("Name"), ServiceMesh.name),
        Column("mesh_type", _l("Type"), ServiceMesh.mesh_type),
        Column("version", _l("Version"), ServiceMesh.version),
        Column("status", _l("Status"), ServiceMesh.status),
        Column("description", _l("Description"), ServiceMesh.description),
    ],
    search=[ServiceMesh.name, ServiceMesh.version],
    filters=[
        Filter("mesh_type", _l("Type"), lambda s, v: s.where(ServiceMesh.mesh_type == v),
               labelled_choices("mesh_type", MESH_TYPES)),
        Filter("status", _l("Status"), lambda s, v: s.where(ServiceMesh.status == v),
               labelled_choices("switched", MESH_STATUSES)),
    ],
)
