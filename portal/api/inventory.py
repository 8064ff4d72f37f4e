"""Inventory: racks, baremetal servers, baremetal groups, flavors (vm-specs) and service
meshes — each over its area's service, with the rules and messages of its pages."""

from __future__ import annotations

from typing import Any, Literal

from flask import url_for
from flask_login import current_user
from pydantic import BaseModel, Field

from portal.api import api
from portal.api.core import Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import CONFLICT, FORBIDDEN, ApiError
from portal.api.schemas import Id, Input, Stamped, page_of
from portal.audit.service import snapshot
from portal.auth.access import OPERATOR, get_or_404, roles_of
from portal.baremetals import lists as server_lists
from portal.baremetals import service as servers
from portal.groups import lists as group_lists
from portal.groups import service as groups
from portal.i18n import _
from portal.meshes import routes as mesh_pages
from portal.meshes import service as meshes
from portal.models import (
    BAREMETAL_STATUSES,
    MESH_STATUSES,
    MESH_TYPES,
    Baremetal,
    BaremetalGroup,
    Rack,
    ServiceMesh,
    VirtualMachineSpecification,
)
from portal.racks import lists as rack_lists
from portal.racks import service as racks
from portal.specs import lists as spec_lists
from portal.specs import service as specs

ServerStatus = Literal[BAREMETAL_STATUSES]  # type: ignore[valid-type]
Amount = Field(0, ge=0, le=servers.MAX_TOTAL, description="Cores or GiB.")


def _user():
    return current_user._get_current_object()


def merged(obj: Any, names: tuple[str, ...], body: BaseModel) -> dict[str, Any]:
    """An update's values: the object's current ones, overridden by the fields sent."""
    return {**snapshot(obj, names), **body.model_dump(exclude_unset=True)}


def refused(error: Exception) -> ApiError:
    """A delete the service refuses (the object is still in use): 409 with its words."""
    return ApiError(CONFLICT, str(error))


# --- racks ---------------------------------------------------------------------------------

RACK_TAGS = ("racks",)
RACK_FIELDS = ("name", "region", "dc", "location", "height_u", "bgp_asn", "network_notes")


class RackOut(Stamped):
    name: str
    region: str
    dc: str
    location: str
    height_u: int
    bgp_asn: int | None
    network_notes: str


class RackIn(Input):
    name: str = Field(max_length=64)
    region: str = Field(max_length=64)
    dc: str = Field(max_length=64)
    location: str = Field("", max_length=255)
    height_u: int = Field(42, ge=1, le=60)
    bgp_asn: int | None = Field(None, ge=1, le=racks.MAX_ASN)
    network_notes: str = Field("", max_length=20_000)


class RackChange(Input):
    """Only the fields sent change; a new region/dc moves the rack's servers with it."""

    name: str = Field(None, max_length=64)
    region: str = Field(None, max_length=64)
    dc: str = Field(None, max_length=64)
    location: str = Field(None, max_length=255)
    height_u: int = Field(None, ge=1, le=60)
    bgp_asn: int | None = Field(None, ge=1, le=racks.MAX_ASN)
    network_notes: str = Field(None, max_length=20_000)


RackPage = page_of(RackOut, "RackPage")
RackQuery = list_query("RackQuery", rack_lists.racks, (
    ApiFilter("region", "region", str), ApiFilter("dc", "dc", str)))


def _rack_fields(values: dict[str, Any]) -> racks.RackFields:
    return racks.RackFields(**{k: (v.strip() if isinstance(v, str) else v)
                               for k, v in values.items() if k in RACK_FIELDS})


@api.operation("GET", "/racks", summary="List racks", tags=RACK_TAGS, access=Access("racks"),
               query=RackQuery, response=RackPage)
def list_racks(query):
    return run(rack_lists.racks, query)


@api.operation("GET", "/racks/{rack_id}", summary="Get a rack", tags=RACK_TAGS,
               access=Access("racks"), response=RackOut)
def get_rack(rack_id: int):
    return get_or_404(Rack, rack_id)


@api.operation("POST", "/racks", summary="Create a rack", tags=RACK_TAGS,
               access=Access("racks", "write"), body=RackIn, response=RackOut, status=201)
def create_rack(body: RackIn):
    rack = racks.create_rack(_rack_fields(body.model_dump()))
    return rack, {"Location": url_for("api.get_rack", rack_id=rack.id)}


@api.operation("PATCH", "/racks/{rack_id}", summary="Update a rack", tags=RACK_TAGS,
               access=Access("racks", "write"), body=RackChange, response=RackOut)
def update_rack(rack_id: int, body: RackChange):
    """Refused when a lower height would leave servers sticking out of the rack."""
    rack = get_or_404(Rack, rack_id)
    return racks.update_rack(rack, _rack_fields(merged(rack, RACK_FIELDS, body)))


@api.operation("DELETE", "/racks/{rack_id}", summary="Delete an empty rack", tags=RACK_TAGS,
               access=Access("racks", "write"), status=204, errors=(409,))
def delete_rack(rack_id: int):
    try:
        racks.delete_rack(get_or_404(Rack, rack_id))
    except racks.RackInvalid as error:
        raise refused(error) from None


# --- baremetals ----------------------------------------------------------------------------

SERVER_TAGS = ("baremetals",)
SERVER_FIELDS = tuple(f for f in servers.ServerFields.__dataclass_fields__)


class ServerOut(Stamped):
    name: str
    serial: str
    status: ServerStatus
    region: str
    dc: str
    rack_id: int | None
    rack_unit: int | None = Field(description="Lowest unit it occupies, 1-based.")
    size_u: int
    group_id: int | None
    total_cpu: int
    total_memory: int
    total_storage: int
    available_cpu: int
    available_memory: int
    available_storage: int
    hypervisor_uri: str | None = Field(description=(
        "Where the libvirt driver reaches the server (e.g. qemu+ssh://root@host/system); "
        "null: not managed through libvirt."))


class ServerIn(Input):
    name: str = Field(max_length=255)
    serial: str = Field(max_length=255)
    status: ServerStatus = "active"
    region: str = Field("", max_length=64, description="Default: the rack's.")
    dc: str = Field("", max_length=64, description="Default: the rack's.")
    rack_id: Id | None = None
    rack_unit: int | None = Field(None, ge=1, le=60)
    size_u: int = Field(1, ge=1, le=60)
    group_id: Id | None = None
    total_cpu: int = Amount
    total_memory: int = Amount
    total_storage: int = Amount
    hypervisor_uri: str | None = Field(None, max_length=servers.MAX_URI_LENGTH, description=(
        "A libvirt connection URI, e.g. qemu+ssh://root@host/system."))


class ServerChange(Input):
    """Only the fields sent change. Maintainers may send ``status`` alone, for servers
    assigned to them. The group changes through POST …/move."""

    name: str = Field(None, max_length=255)
    serial: str = Field(None, max_length=255)
    status: ServerStatus = None
    region: str = Field(None, max_length=64)
    dc: str = Field(None, max_length=64)
    rack_id: Id | None = None
    rack_unit: int | None = Field(None, ge=1, le=60)
    size_u: int = Field(None, ge=1, le=60)
    total_cpu: int = Field(None, ge=0, le=servers.MAX_TOTAL)
    total_memory: int = Field(None, ge=0, le=servers.MAX_TOTAL)
    total_storage: int = Field(None, ge=0, le=servers.MAX_TOTAL)
    hypervisor_uri: str | None = Field(None, max_length=servers.MAX_URI_LENGTH, description=(
        "A libvirt connection URI; null (or empty) clears it."))


class ServerMove(Input):
    group_id: Id | None = Field(description="The new group; null: no group.")


ServerPage = page_of(ServerOut, "BaremetalPage")
ServerQuery = list_query("BaremetalQuery", server_lists.baremetals, (
    ApiFilter("status", "status", ServerStatus),
    ApiFilter("region", "region", str),
    ApiFilter("dc", "dc", str),
    ApiFilter("rack_id", "rack", int),
    ApiFilter("group_id", "group", int),
))


def _server_fields(values: dict[str, Any]) -> servers.ServerFields:
    return servers.ServerFields(**{k: (v.strip() if isinstance(v, str) else v)
                                   for k, v in values.items() if k in SERVER_FIELDS})


@api.operation("GET", "/baremetals", summary="List servers", tags=SERVER_TAGS,
               access=Access("baremetals"), query=ServerQuery, response=ServerPage)
def list_baremetals(query):
    return run(server_lists.baremetals, query)


@api.operation("GET", "/baremetals/{baremetal_id}", summary="Get a server", tags=SERVER_TAGS,
               access=Access("baremetals"), response=ServerOut)
def get_baremetal(baremetal_id: int):
    return get_or_404(Baremetal, baremetal_id)


@api.operation("POST", "/baremetals", summary="Create a server", tags=SERVER_TAGS,
               access=Access("baremetals", "write"), body=ServerIn, response=ServerOut,
               status=201)
def create_baremetal(body: ServerIn):
    """Never overlapping another server in its rack, never sticking out of it; its
    capacity joins its group's counters in the same transaction."""
    server = servers.create_server(_server_fields(body.model_dump()))
    return server, {"Location": url_for("api.get_baremetal", baremetal_id=server.id)}


@api.operation("PATCH", "/baremetals/{baremetal_id}", summary="Update a server",
               tags=SERVER_TAGS, access=Access("baremetals", "status"), body=ServerChange,
               response=ServerOut, errors=(409,))
def update_baremetal(baremetal_id: int, body: ServerChange):
    """Refused when totals would fall below what its VMs hold, or a status other than
    active while VMs hold resources on it would strand them (the message names them)."""
    server = get_or_404(Baremetal, baremetal_id)
    sent = body.model_dump(exclude_unset=True)
    if OPERATOR not in roles_of(current_user):
        if set(sent) != {"status"} or not servers.may_change_status(_user(), server):
            raise ApiError(FORBIDDEN, _("Maintainers set only the status of servers "
                                        "assigned to them."))
        return servers.change_status(server, sent["status"])
    return servers.update_server(server, _server_fields(merged(server, SERVER_FIELDS, body)))


@api.operation("POST", "/baremetals/{baremetal_id}/move", summary="Move a server to a group",
               tags=SERVER_TAGS, access=Access("baremetals", "write"), body=ServerMove,
               response=ServerOut, errors=(409,))
def move_baremetal(baremetal_id: int, body: ServerMove):
    """Its capacity leaves the old group's counters and joins the new one's; refused while
    VMs hold resources on it."""
    return servers.move_server(get_or_404(Baremetal, baremetal_id), body.group_id)


@api.operation("DELETE", "/baremetals/{baremetal_id}", summary="Delete a server",
               tags=SERVER_TAGS, access=Access("baremetals", "write"), status=204,
               errors=(409,))
def delete_baremetal(baremetal_id: int):
    """Refused while VMs hold resources on it; its assignments go with it."""
    try:
        servers.delete_server(get_or_404(Baremetal, baremetal_id))
    except servers.ServerInvalid as error:
        raise refused(error) from None


# --- baremetal groups ----------------------------------------------------------------------

GROUP_TAGS = ("baremetal-groups",)


class BaremetalGroupOut(Stamped):
    name: str
    description: str
    dimension: str = Field(description="Why these servers are grouped, e.g. geo:tw-north.")
    total_cpu: int
    total_memory: int
    total_storage: int
    available_cpu: int
    available_memory: int
    available_storage: int


class BaremetalGroupIn(Input):
    name: str = Field(max_length=groups.MAX_NAME)
    dimension: str = Field("", max_length=64)
    description: str = Field("", max_length=10_000)


class BaremetalGroupChange(Input):
    name: str = Field(None, max_length=groups.MAX_NAME)
    dimension: str = Field(None, max_length=64)
    description: str = Field(None, max_length=10_000)


GroupPage = page_of(BaremetalGroupOut, "BaremetalGroupPage")
GroupQuery = list_query("BaremetalGroupQuery", group_lists.groups)


@api.operation("GET", "/baremetal-groups", summary="List groups", tags=GROUP_TAGS,
               access=Access("groups"), query=GroupQuery, response=GroupPage)
def list_groups(query):
    """Tenant admins see the groups their tenants hold quota in (capacity only)."""
    return run(group_lists.groups, query)


@api.operation("GET", "/baremetal-groups/{group_id}", summary="Get a group", tags=GROUP_TAGS,
               access=Access("groups"), response=BaremetalGroupOut)
def get_group(group_id: int):
    return group_lists.visible_group_or_404(group_id)


@api.operation("POST", "/baremetal-groups", summary="Create a group", tags=GROUP_TAGS,
               access=Access("groups", "write"), body=BaremetalGroupIn,
               response=BaremetalGroupOut, status=201)
def create_group(body: BaremetalGroupIn):
    """A new, empty group: servers join it with POST /baremetals/{id}/move."""
    group = groups.create_group(body.model_dump(), _user())
    return group, {"Location": url_for("api.get_group", group_id=group.id)}


@api.operation("PATCH", "/baremetal-groups/{group_id}", summary="Update a group",
               tags=GROUP_TAGS, access=Access("groups", "write"), body=BaremetalGroupChange,
               response=BaremetalGroupOut)
def update_group(group_id: int, body: BaremetalGroupChange):
    group = get_or_404(BaremetalGroup, group_id)
    groups.update_group(group, merged(group, groups.GROUP_FIELDS, body), _user())
    return group


@api.operation("DELETE", "/baremetal-groups/{group_id}", summary="Delete a group",
               tags=GROUP_TAGS, access=Access("groups", "write"), status=204, errors=(409,))
def delete_group(group_id: int):
    """Refused while servers belong to it or clusters refer to it; its quotas go with it."""
    try:
        groups.delete_group(get_or_404(BaremetalGroup, group_id), _user())
    except groups.GroupInvalid as error:
        raise refused(error) from None


# --- flavors (vm-specs) --------------------------------------------------------------------

SPEC_TAGS = ("vm-specs",)
Figure = Field(ge=1, le=specs.MAX_FIGURE)


class SpecOut(Stamped):
    name: str
    cpu: int
    memory: int
    storage: int
    generation: int
    description: str
    is_active: bool = Field(description="Retired flavors stay for history but cannot be "
                                        "chosen.")


class SpecIn(Input):
    name: str = Field(max_length=specs.MAX_NAME)
    cpu: int = Figure
    memory: int = Figure
    storage: int = Field(ge=0, le=specs.MAX_FIGURE)
    generation: int = Field(1, ge=1, le=specs.MAX_FIGURE)
    description: str = Field("", max_length=10_000)
    is_active: bool = True


class SpecChange(Input):
    """Only the fields sent change; existing VMs keep the resources they were placed with.
    ``is_active: false`` retires the flavor."""

    name: str = Field(None, max_length=specs.MAX_NAME)
    cpu: int = Field(None, ge=1, le=specs.MAX_FIGURE)
    memory: int = Field(None, ge=1, le=specs.MAX_FIGURE)
    storage: int = Field(None, ge=0, le=specs.MAX_FIGURE)
    generation: int = Field(None, ge=1, le=specs.MAX_FIGURE)
    description: str = Field(None, max_length=10_000)
    is_active: bool = None


SpecPage = page_of(SpecOut, "VmSpecPage")
SpecQuery = list_query("VmSpecQuery", spec_lists.flavors, (
    ApiFilter("is_active", "active", bool, "true: offered; false: retired."),
    ApiFilter("generation", "generation", int),
))


@api.operation("GET", "/vm-specs", summary="List flavors", tags=SPEC_TAGS,
               access=Access("specs"), query=SpecQuery, response=SpecPage)
def list_specs(query):
    return run(spec_lists.flavors, query)


@api.operation("GET", "/vm-specs/{spec_id}", summary="Get a flavor", tags=SPEC_TAGS,
               access=Access("specs"), response=SpecOut)
def get_spec(spec_id: int):
    return get_or_404(VirtualMachineSpecification, spec_id)


@api.operation("POST", "/vm-specs", summary="Create a flavor", tags=SPEC_TAGS,
               access=Access("specs", "write"), body=SpecIn, response=SpecOut, status=201)
def create_spec(body: SpecIn):
    flavor = specs.create_flavor(body.model_dump(), _user())
    return flavor, {"Location": url_for("api.get_spec", spec_id=flavor.id)}


@api.operation("PATCH", "/vm-specs/{spec_id}", summary="Update or retire a flavor",
               tags=SPEC_TAGS, access=Access("specs", "write"), body=SpecChange,
               response=SpecOut)
def update_spec(spec_id: int, body: SpecChange):
    flavor = get_or_404(VirtualMachineSpecification, spec_id)
    specs.update_flavor(flavor, merged(flavor, specs.FLAVOR_FIELDS, body), _user())
    return flavor


@api.operation("DELETE", "/vm-specs/{spec_id}", summary="Delete an unused flavor",
               tags=SPEC_TAGS, access=Access("specs", "write"), status=204, errors=(409,))
def delete_spec(spec_id: int):
    """Only a flavor no VM was ever placed with; one with history is retired instead
    (PATCH is_active false), and deleting it answers 409."""
    flavor = get_or_404(VirtualMachineSpecification, spec_id)
    try:
        specs.delete_flavor(flavor, _user())
    except specs.FlavorInvalid as refused:
        raise ApiError(CONFLICT, str(refused)) from None


# --- service meshes ------------------------------------------------------------------------

MESH_TAGS = ("service-meshes",)
MeshType = Literal[MESH_TYPES]  # type: ignore[valid-type]
MeshStatus = Literal[MESH_STATUSES]  # type: ignore[valid-type]


class MeshOut(Stamped):
    name: str
    mesh_type: MeshType
    version: str
    status: MeshStatus
    description: str


class MeshIn(Input):
    name: str = Field(max_length=meshes.MAX_NAME)
    mesh_type: MeshType
    version: str = Field(max_length=meshes.MAX_VERSION)
    status: MeshStatus = "active"
    description: str = Field("", max_length=10_000)


class MeshChange(Input):
    name: str = Field(None, max_length=meshes.MAX_NAME)
    mesh_type: MeshType = None
    version: str = Field(None, max_length=meshes.MAX_VERSION)
    status: MeshStatus = None
    description: str = Field(None, max_length=10_000)


MeshPage = page_of(MeshOut, "ServiceMeshPage")
MeshQuery = list_query("ServiceMeshQuery", mesh_pages.meshes, (
    ApiFilter("mesh_type", "mesh_type", MeshType), ApiFilter("status", "status", MeshStatus)))


@api.operation("GET", "/service-meshes", summary="List service meshes", tags=MESH_TAGS,
               access=Access("meshes"), query=MeshQuery, response=MeshPage)
def list_meshes(query):
    return run(mesh_pages.meshes, query)


@api.operation("GET", "/service-meshes/{mesh_id}", summary="Get a service mesh",
               tags=MESH_TAGS, access=Access("meshes"), response=MeshOut)
def get_mesh(mesh_id: int):
    return get_or_404(ServiceMesh, mesh_id)


@api.operation("POST", "/service-meshes", summary="Create a service mesh", tags=MESH_TAGS,
               access=Access("meshes", "write"), body=MeshIn, response=MeshOut, status=201)
def create_mesh(body: MeshIn):
    mesh = meshes.create_mesh(body.model_dump(), _user())
    return mesh, {"Location": url_for("api.get_mesh", mesh_id=mesh.id)}


@api.operation("PATCH", "/service-meshes/{mesh_id}", summary="Update a service mesh",
               tags=MESH_TAGS, access=Access("meshes", "write"), body=MeshChange,
               response=MeshOut)
def update_mesh(mesh_id: int, body: MeshChange):
    mesh = get_or_404(ServiceMesh, mesh_id)
    meshes.update_mesh(mesh, merged(mesh, meshes.MESH_FIELDS, body), _user())
    return mesh


@api.operation("DELETE", "/service-meshes/{mesh_id}", summary="Delete a service mesh",
               tags=MESH_TAGS, access=Access("meshes", "write"), status=204, errors=(409,))
def delete_mesh(mesh_id: int):
    """Refused while any cluster uses it."""
    try:
        meshes.delete_mesh(get_or_404(ServiceMesh, mesh_id), _user())
    except meshes.MeshInvalid as error:
        raise refused(error) from None

