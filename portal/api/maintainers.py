"""Maintainers, maintainer groups (with members) and assignments of either to resources,
over portal.maintainers.service."""

from __future__ import annotations

from typing import Literal

from flask import url_for
from flask_login import current_user
from pydantic import Field, model_validator
from sqlalchemy import select

from portal.api import api, listing
from portal.api.core import ANY_ROLE, Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import CONFLICT, VALIDATION_ERROR, ApiError, invalid, not_found
from portal.api.schemas import INT32, Id, Input, Paging, Query, Stamped, page_of
from portal.audit.service import snapshot
from portal.auth.access import get_or_404, tenant_ids
from portal.extensions import db
from portal.i18n import _
from portal.maintainers import service
from portal.maintainers.lists import groups as group_list
from portal.maintainers.lists import maintainers as maintainer_list
from portal.models import (
    ASSIGNABLE_TYPES,
    MAINTAINER_STATUSES,
    Maintainer,
    MaintainerGroup,
    ResourceMaintainer,
    User,
)

TAGS = ("maintainers",)
GROUP_TAGS = ("maintainer-groups",)
ASSIGNMENT_TAGS = ("assignments",)
Status = Literal[MAINTAINER_STATUSES]  # type: ignore[valid-type]
ResourceType = Literal[ASSIGNABLE_TYPES]  # type: ignore[valid-type]


def _user():
    return current_user._get_current_object()


def _call(action, *args, **kwargs):
    """Run a service write; its MaintainerError is a validation problem on its field."""
    try:
        return action(*args, **kwargs)
    except service.MaintainerError as error:
        db.session.rollback()
        field = error.field or "body"
        raise ApiError(VALIDATION_ERROR, str(error), errors={field: str(error)}) from None


# --- maintainers ---------------------------------------------------------------------------

class MaintainerOut(Stamped):
    name: str
    account: str
    email: str
    phone: str
    status: Status
    user_id: int | None = Field(description="The linked portal login, if any.")


class MaintainerIn(Input):
    name: str = Field(max_length=128)
    account: str = Field(max_length=64, description="Lowercase handle, unique.")
    email: str = Field("", max_length=255)
    phone: str = Field("", max_length=64)
    status: Status = "active"
    user_id: Id | None = None


class MaintainerChange(Input):
    name: str = Field(None, max_length=128)
    account: str = Field(None, max_length=64)
    email: str = Field(None, max_length=255)
    phone: str = Field(None, max_length=64)
    status: Status = None
    user_id: Id | None = None


class MaintainerDelete(Query):
    leave_groups_without_manager: bool = Field(
        False, description="Confirm that groups this person manages lose their manager.")


MaintainerPage = page_of(MaintainerOut, "MaintainerPage")
MaintainerQuery = list_query("MaintainerQuery", maintainer_list,
                             (ApiFilter("status", "status", Status),))


def _save_maintainer(maintainer: Maintainer | None, values: dict) -> Maintainer:
    username = ""
    if values.get("user_id") is not None:
        linked = db.session.get(User, values["user_id"])
        if linked is None:
            raise invalid("user_id", _("No such user."))
        username = linked.username
    return _call(service.save_maintainer, maintainer, user=_user(), name=values["name"],
                 account=values["account"], email=values["email"], phone=values["phone"],
                 status=values["status"], username=username)


@api.operation("GET", "/maintainers", summary="List maintainers", tags=TAGS,
               access=Access("maintainers"), query=MaintainerQuery, response=MaintainerPage)
def list_maintainers(query):
    return run(maintainer_list, query)


@api.operation("GET", "/maintainers/{maintainer_id}", summary="Get a maintainer", tags=TAGS,
               access=Access("maintainers"), response=MaintainerOut)
def get_maintainer(maintainer_id: int):
    return get_or_404(Maintainer, maintainer_id)


@api.operation("POST", "/maintainers", summary="Create a maintainer", tags=TAGS,
               access=Access("maintainers", "write"), body=MaintainerIn, response=MaintainerOut,
               status=201)
def create_maintainer(body: MaintainerIn):
    maintainer = _save_maintainer(None, body.model_dump())
    return maintainer, {"Location": url_for("api.get_maintainer", maintainer_id=maintainer.id)}


@api.operation("PATCH", "/maintainers/{maintainer_id}", summary="Update a maintainer",
               tags=TAGS, access=Access("maintainers", "write"), body=MaintainerChange,
               response=MaintainerOut)
def update_maintainer(maintainer_id: int, body: MaintainerChange):
    maintainer = get_or_404(Maintainer, maintainer_id)
    values = {**snapshot(maintainer, service.MAINTAINER_FIELDS),
              **body.model_dump(exclude_unset=True)}
    return _save_maintainer(maintainer, values)


@api.operation("DELETE", "/maintainers/{maintainer_id}", summary="Delete a maintainer",
               tags=TAGS, access=Access("maintainers", "write"), query=MaintainerDelete,
               status=204, errors=(409,))
def delete_maintainer(maintainer_id: int, query: MaintainerDelete):
    """Memberships and assignments go with the person. Refused (409) while they manage a
    group, unless ``leave_groups_without_manager=true``."""
    maintainer = get_or_404(Maintainer, maintainer_id)
    try:
        service.delete_maintainer(maintainer, user=_user(),
                                  leave_groups_without_manager=query.leave_groups_without_manager)
    except service.MaintainerError as error:
        raise ApiError(CONFLICT, str(error)) from None


# --- maintainer groups ---------------------------------------------------------------------

class MaintainerGroupOut(Stamped):
    name: str
    description: str
    manager_id: int | None = Field(description="Normally a member too.")
    member_ids: list[int]


class MaintainerGroupIn(Input):
    name: str = Field(max_length=128)
    description: str = Field("", max_length=10_000)
    manager_id: Id | None = Field(None, description="Becomes a member too.")


class MaintainerGroupChange(Input):
    name: str = Field(None, max_length=128)
    description: str = Field(None, max_length=10_000)
    manager_id: Id | None = None


class MemberIn(Input):
    maintainer_id: Id


GroupPage = page_of(MaintainerGroupOut, "MaintainerGroupPage")
GroupQuery = list_query("MaintainerGroupQuery", group_list, (
    ApiFilter("managed", "managed", bool, "true: with a manager; false: without one."),))


def group_out(group: MaintainerGroup) -> MaintainerGroupOut:
    return MaintainerGroupOut.model_validate({
        **{name: getattr(group, name) for name in
           ("id", "created_at", "updated_at", "name", "description", "manager_id")},
        "member_ids": sorted(m.maintainer_id for m in group.memberships),
    })


def _save_group(group: MaintainerGroup | None, values: dict) -> MaintainerGroup:
    return _call(service.save_group, group, user=_user(), name=values["name"],
                 description=values["description"], manager_id=values["manager_id"])


@api.operation("GET", "/maintainer-groups", summary="List maintainer groups", tags=GROUP_TAGS,
               access=Access("maintainers"), query=GroupQuery, response=GroupPage)
def list_maintainer_groups(query):
    page = run(group_list, query)
    return {**page, "items": [group_out(g) for g in page["items"]]}


@api.operation("GET", "/maintainer-groups/{group_id}", summary="Get a maintainer group",
               tags=GROUP_TAGS, access=Access("maintainers"), response=MaintainerGroupOut)
def get_maintainer_group(group_id: int):
    return group_out(get_or_404(MaintainerGroup, group_id))


@api.operation("POST", "/maintainer-groups", summary="Create a maintainer group",
               tags=GROUP_TAGS, access=Access("maintainers", "write"), body=MaintainerGroupIn,
               response=MaintainerGroupOut, status=201)
def create_maintainer_group(body: MaintainerGroupIn):
    group = _save_group(None, body.model_dump())
    return group_out(group), {"Location": url_for("api.get_maintainer_group",
                                                  group_id=group.id)}


@api.operation("PATCH", "/maintainer-groups/{group_id}", summary="Update a maintainer group",
               tags=GROUP_TAGS, access=Access("maintainers", "write"), body=MaintainerGroupChange,
               response=MaintainerGroupOut)
def update_maintainer_group(group_id: int, body: MaintainerGroupChange):
    group = get_or_404(MaintainerGroup, group_id)
    values = {**snapshot(group, ("name", "description", "manager_id")),
              **body.model_dump(exclude_unset=True)}
    return group_out(_save_group(group, values))


@api.operation("DELETE", "/maintainer-groups/{group_id}", summary="Delete a maintainer group",
               tags=GROUP_TAGS, access=Access("maintainers", "write"), status=204)
def delete_maintainer_group(group_id: int):
    """Its memberships and assignments go with it."""
    service.delete_group(get_or_404(MaintainerGroup, group_id), user=_user())


@api.operation("POST", "/maintainer-groups/{group_id}/members", summary="Add a member",
               tags=GROUP_TAGS, access=Access("maintainers", "write"), body=MemberIn,
               response=MaintainerGroupOut, status=201, errors=(409,))
def add_group_member(group_id: int, body: MemberIn):
    group = get_or_404(MaintainerGroup, group_id)
    if db.session.get(Maintainer, body.maintainer_id) is None:
        raise invalid("maintainer_id", _("No such maintainer."))
    if service.is_member(body.maintainer_id, group.id):
        raise ApiError(CONFLICT, _("Already a member of this group."))
    _call(service.add_member, group, body.maintainer_id, user=_user())
    return group_out(group)


@api.operation("DELETE", "/maintainer-groups/{group_id}/members/{maintainer_id}",
               summary="Remove a member", tags=GROUP_TAGS,
               access=Access("maintainers", "write"), response=MaintainerGroupOut, errors=(409,))
def remove_group_member(group_id: int, maintainer_id: int):
    """Refused (409) for the group's manager: choose another manager first."""
    group = get_or_404(MaintainerGroup, group_id)
    if not service.is_member(maintainer_id, group.id):
        raise not_found(_("Not a member of this group."))
    try:
        service.remove_member(group, maintainer_id, user=_user())
    except service.MaintainerError as error:
        raise ApiError(CONFLICT, str(error)) from None
    return group_out(group)


# --- assignments ---------------------------------------------------------------------------

class AssignmentOut(Stamped):
    resource_type: ResourceType
    resource_id: int
    maintainer_id: int | None
    maintainer_group_id: int | None
    responsibility: str
    created_by: int | None


class AssignmentIn(Input):
    """Exactly one of ``maintainer_id`` and ``maintainer_group_id``."""

    resource_type: ResourceType
    resource_id: Id
    maintainer_id: Id | None = None
    maintainer_group_id: Id | None = None
    responsibility: str = Field("", max_length=255, description="e.g. primary on-call")

    @model_validator(mode="after")
    def _one_assignee(self):
        if (self.maintainer_id is None) == (self.maintainer_group_id is None):
            raise ValueError("Give exactly one of maintainer_id and maintainer_group_id.")
        return self


class AssignmentQuery(Paging):
    resource_type: ResourceType | None = None
    resource_id: int | None = Field(None, ge=1, le=INT32)
    maintainer_id: int | None = Field(None, ge=1, le=INT32)
    maintainer_group_id: int | None = Field(None, ge=1, le=INT32)


AssignmentPage = page_of(AssignmentOut, "AssignmentPage")


def _visible_assignments():
    """Staff see every assignment; a tenant admin those on their tenants and on their
    tenants' VMs and clusters."""
    ids = tenant_ids()
    if ids is None:
        return select(ResourceMaintainer)
    return service.assignments_on_tenants(ids)


@api.operation("GET", "/assignments", summary="List assignments", tags=ASSIGNMENT_TAGS,
               access=ANY_ROLE, query=AssignmentQuery, response=AssignmentPage)
def list_assignments(query: AssignmentQuery):
    """Who maintains what. Tenant admins read the assignments on their own tenants, VMs
    and clusters."""
    stmt = _visible_assignments()
    for name in ("resource_type", "resource_id", "maintainer_id", "maintainer_group_id"):
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(ResourceMaintainer, name) == value)
    total = listing.total(stmt)
    rows = db.session.scalars(
        stmt.order_by(ResourceMaintainer.id).limit(query.limit).offset(query.offset)).all()
    return {"items": rows, "total": total}


def visible_assignment(assignment_id: int) -> ResourceMaintainer:
    row = db.session.scalar(
        _visible_assignments().where(ResourceMaintainer.id == assignment_id))
    if row is None:
        raise not_found()
    return row


@api.operation("GET", "/assignments/{assignment_id}", summary="Get an assignment",
               tags=ASSIGNMENT_TAGS, access=ANY_ROLE, response=AssignmentOut)
def get_assignment(assignment_id: int):
    return visible_assignment(assignment_id)


@api.operation("POST", "/assignments", summary="Assign a maintainer or group",
               tags=ASSIGNMENT_TAGS, access=Access("maintainers", "write"), body=AssignmentIn,
               response=AssignmentOut, status=201, errors=(409,))
def create_assignment(body: AssignmentIn):
    """A person or a group to any resource; the same assignee twice is 409 conflict."""
    column, value = ((ResourceMaintainer.maintainer_id, body.maintainer_id)
                     if body.maintainer_id is not None
                     else (ResourceMaintainer.maintainer_group_id, body.maintainer_group_id))
    duplicate = db.session.scalar(select(ResourceMaintainer.id).where(
        ResourceMaintainer.resource_type == body.resource_type,
        ResourceMaintainer.resource_id == body.resource_id, column == value))
    if duplicate is not None:
        raise ApiError(CONFLICT, _("This assignee is already assigned to this resource."))
    row = _call(service.assign, body.resource_type, body.resource_id, user=_user(),
                maintainer_id=body.maintainer_id, group_id=body.maintainer_group_id,
                responsibility=body.responsibility)
    return row, {"Location": url_for("api.get_assignment", assignment_id=row.id)}


@api.operation("DELETE", "/assignments/{assignment_id}", summary="Remove an assignment",
               tags=ASSIGNMENT_TAGS, access=Access("maintainers", "write"), status=204)
def delete_assignment(assignment_id: int):
    row = db.session.get(ResourceMaintainer, assignment_id)
    if row is None:
        raise not_found()
    _call(service.unassign, row.id, user=_user())
