"""Maintainers, maintainer groups, and their assignments to resources.

Who maintains a resource is answered from its own assignments and, for the on-call view,
from its parents' too: a VM inherits its cluster's and its server's maintainers, a server
its rack's and its group's (marked as inherited).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import joinedload, selectinload

from portal import text
from portal.audit.service import audited_create, audited_update, record
from portal.extensions import db
from portal.i18n import _, _l
from portal.models import (
    ASSIGNABLE_TYPES,
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    Maintainer,
    MaintainerGroup,
    MaintainerToMaintainerGroup,
    Rack,
    ResourceMaintainer,
    ServiceMesh,
    Tenant,
    User,
    VirtualMachine,
)

RESOURCE_MODELS: dict[str, Any] = {
    "rack": Rack,
    "baremetal": Baremetal,
    "baremetal_group": BaremetalGroup,
    "tenant": Tenant,
    "virtual_machine": VirtualMachine,
    "k8s_cluster": K8sCluster,
    "service_mesh": ServiceMesh,
}
RESOURCE_LABELS = {
    "rack": _l("Racks"),
    "baremetal": _l("Servers"),
    "baremetal_group": _l("Groups"),
    "tenant": _l("Tenants"),
    "virtual_machine": _l("VMs"),
    "k8s_cluster": _l("Clusters"),
    "service_mesh": _l("Service meshes"),
}
# A noun before a name ("rack tpe1-r01"); the reader's language, when shown.
RESOURCE_NOUNS = {
    "rack": _l("rack"),
    "baremetal": _l("server"),
    "baremetal_group": _l("group"),
    "tenant": _l("tenant"),
    "virtual_machine": _l("VM"),
    "k8s_cluster": _l("cluster"),
    "service_mesh": _l("service mesh"),
}
# The detail page of each type: endpoint and its URL argument.
RESOURCE_ENDPOINTS = {
    "rack": ("racks.detail", "rack_id"),
    "baremetal": ("baremetals.detail", "server_id"),
    "baremetal_group": ("groups.detail", "group_id"),
    "tenant": ("tenants.detail", "tenant_id"),
    "virtual_machine": ("vms.detail", "vm_id"),
    "k8s_cluster": ("clusters.detail", "cluster_id"),
    "service_mesh": ("meshes.detail", "mesh_id"),
}
# Resources in these states come first: they are what someone is being called about.
URGENT_STATUSES = ("error", "maintenance")
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class MaintainerError(ValueError):
    """A request about maintainers that cannot be carried out. ``field`` names the form
    field it concerns, when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def errors(self) -> dict[str | None, str]:
        """Field -> message, as forms take them (portal.web.crud)."""
        return {self.field: str(self)}


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    assignment: ResourceMaintainer
    resource: Any
    via_group: str | None  # the group's name when assigned through a group

    @property
    def status(self) -> str | None:
        return getattr(self.resource, "status", None)


def load_resources(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """Resolve (type, id) pairs with one query per resource type."""
    ids_by_type: dict[str, set[int]] = defaultdict(set)
    for resource_type, resource_id in pairs:
        ids_by_type[resource_type].add(resource_id)
    found: dict[tuple[str, int], Any] = {}
    for resource_type, ids in ids_by_type.items():
        model = RESOURCE_MODELS[resource_type]
        for obj in db.session.scalars(select(model).where(model.id.in_(ids))):
            found[(resource_type, obj.id)] = obj
    return found


def _groups_of(maintainer_id: int):
    return select(MaintainerToMaintainerGroup.group_id).where(
        MaintainerToMaintainerGroup.maintainer_id == maintainer_id
    )


def assignments_of(maintainer: Maintainer) -> dict[str, list[Assigned]]:
    """Everything assigned to a maintainer, directly or through their groups, grouped by
    resource type, urgent resources first. Deleted VMs and clusters are left out."""
    rows = db.session.scalars(
        select(ResourceMaintainer)
        .options(joinedload(ResourceMaintainer.maintainer_group))
        .where(
            or_(
                ResourceMaintainer.maintainer_id == maintainer.id,
                ResourceMaintainer.maintainer_group_id.in_(_groups_of(maintainer.id)),
            )
        )
    ).all()
    resources = load_resources([(r.resource_type, r.resource_id) for r in rows])
    grouped: dict[str, list[Assigned]] = defaultdict(list)
    for row in rows:
        resource = resources.get((row.resource_type, row.resource_id))
        if resource is None or getattr(resource, "status", None) == "deleted":
            continue
        via = row.maintainer_group.name if row.maintainer_group is not None else None
        grouped[row.resource_type].append(Assigned(row, resource, via))
    for items in grouped.values():
        items.sort(key=lambda a: (a.status not in URGENT_STATUSES, a.resource.name))
    return {t: grouped[t] for t in RESOURCE_MODELS if t in grouped}


@dataclass
class PanelRow:
    """One assignment as a resource page shows it; a group expands to its people."""

    assignment: ResourceMaintainer
    inherited_from: str | None = None  # e.g. "cluster shop-prod" when inherited
    manager: Maintainer | None = None
    members: list[tuple[Maintainer, Any]] = field(default_factory=list)  # (person, joined_at)


def _rows_for(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], list[ResourceMaintainer]]:
    if not pairs:
        return {}
    conditions = [
        (ResourceMaintainer.resource_type == t) & (ResourceMaintainer.resource_id == i)
        for t, i in pairs
    ]
    rows = (
        db.session.scalars(
            select(ResourceMaintainer)
            .options(
                joinedload(ResourceMaintainer.maintainer),
                joinedload(ResourceMaintainer.maintainer_group).joinedload(MaintainerGroup.manager),
                joinedload(ResourceMaintainer.maintainer_group)
                .selectinload(MaintainerGroup.memberships)
                .joinedload(MaintainerToMaintainerGroup.maintainer),
            )
            .where(or_(*conditions))
            .order_by(ResourceMaintainer.id)
        )
        .unique()
        .all()
    )
    found: dict[tuple[str, int], list[ResourceMaintainer]] = defaultdict(list)
    for row in rows:
        found[(row.resource_type, row.resource_id)].append(row)
    return found


def _panel_row(row: ResourceMaintainer, inherited_from: str | None = None) -> PanelRow:
    panel = PanelRow(row, inherited_from)
    group = row.maintainer_group
    if group is not None:
        panel.manager = group.manager
        members = sorted(group.memberships, key=lambda m: m.maintainer.name)
        # Manager first, then the other members.
        panel.members = [
            (m.maintainer, m.joined_at) for m in members if m.maintainer_id == group.manager_id
        ]
        panel.members += [
            (m.maintainer, m.joined_at) for m in members if m.maintainer_id != group.manager_id
        ]
    return panel


def parents_of(resource_type: str, resource: Any) -> list[tuple[str, Any]]:
    """The resources whose maintainers this one inherits, nearest first."""
    parents: list[tuple[str, Any]] = []
    if resource_type == "virtual_machine":
        if resource.cluster is not None:
            parents.append(("k8s_cluster", resource.cluster))
        if resource.baremetal is not None:
            parents.append(("baremetal", resource.baremetal))
            parents += parents_of("baremetal", resource.baremetal)
    elif resource_type == "baremetal":
        if resource.rack is not None:
            parents.append(("rack", resource.rack))
        if resource.group is not None:
            parents.append(("baremetal_group", resource.group))
    return parents


def maintainers_panel(resource_type: str, resource: Any, inherit: bool = True) -> list[PanelRow]:
    """A resource's own assignments, then (inherit=True) its parents', marked inherited.
    A fixed number of queries, whatever the number of assignments."""
    chain = [(resource_type, resource)] + (parents_of(resource_type, resource) if inherit else [])
    rows = _rows_for([(t, obj.id) for t, obj in chain])
    panel: list[PanelRow] = []
    for t, obj in chain:
        inherited = None if obj is resource else _("%(noun)s %(name)s",
                                                      noun=RESOURCE_NOUNS[t], name=obj.name)
        panel += [_panel_row(row, inherited) for row in rows.get((t, obj.id), [])]
    return panel


def who_to_call(resource_type: str, resource: Any) -> list[PanelRow] | None:
    """For a resource in error or maintenance: everyone to call, its own and inherited
    assignments; None when the resource is fine."""
    if getattr(resource, "status", None) not in URGENT_STATUSES:
        return None
    return maintainers_panel(resource_type, resource, inherit=True)


def maintained_ids(
    resource_type: str, maintainer_id: int | None = None, group_id: int | None = None
):
    """A subquery of the ids of resources of a type assigned to a maintainer (directly or
    through their groups) or to a maintainer group: list filters use it.

    A maintainer's two ways in are a UNION, not an OR: PostgreSQL cannot estimate an OR
    with a subquery in it (it guesses half the assignments), and on 100,000 VMs that guess
    made it scan them all (26 ms) instead of fetching the twenty-odd assigned (1 ms)."""
    stmt = select(ResourceMaintainer.resource_id).where(
        ResourceMaintainer.resource_type == resource_type
    )
    if maintainer_id is not None:
        return union(
            stmt.where(ResourceMaintainer.maintainer_id == maintainer_id),
            stmt.where(ResourceMaintainer.maintainer_group_id.in_(_groups_of(maintainer_id))),
        )
    return stmt.where(ResourceMaintainer.maintainer_group_id == group_id)


def assignments_on_tenants(tenant_ids) -> Any:
    """The assignments a tenant's admins read: on the tenants themselves and on their VMs
    and clusters."""
    kind, rid = ResourceMaintainer.resource_type, ResourceMaintainer.resource_id
    return select(ResourceMaintainer).where(
        or_(
            and_(kind == "tenant", rid.in_(tenant_ids)),
            and_(
                kind == "virtual_machine",
                rid.in_(select(VirtualMachine.id).where(VirtualMachine.tenant_id.in_(tenant_ids))),
            ),
            and_(
                kind == "k8s_cluster",
                rid.in_(select(K8sCluster.id).where(K8sCluster.tenant_id.in_(tenant_ids))),
            ),
        )
    )


def people_on_tenants(tenant_ids) -> Any:
    """Ids of the maintainers assigned to these tenants' resources, in person or as members
    of an assigned group: the only people their admins' filters offer."""
    assigned = assignments_on_tenants(tenant_ids).subquery()
    return select(assigned.c.maintainer_id).where(assigned.c.maintainer_id.is_not(None)).union(
        select(MaintainerToMaintainerGroup.maintainer_id).where(
            MaintainerToMaintainerGroup.group_id.in_(select(assigned.c.maintainer_group_id))
        )
    )


def groups_on_tenants(tenant_ids) -> Any:
    """Ids of the maintainer groups assigned to these tenants' resources."""
    return assignments_on_tenants(tenant_ids).with_only_columns(
        ResourceMaintainer.maintainer_group_id
    )


def maintained_by(model: Any, maintainer_id: int) -> Any:
    """A WHERE condition: the VMs or clusters (``model``) a maintainer looks after — assigned
    to them or their groups, or inherited: a VM from its cluster, server, the server's rack
    and group, and its tenant; a cluster from its group and its tenant."""

    def assigned(resource_type: str):
        return maintained_ids(resource_type, maintainer_id=maintainer_id)

    if model is VirtualMachine:
        servers = select(Baremetal.id).where(
            or_(
                Baremetal.id.in_(assigned("baremetal")),
                Baremetal.rack_id.in_(assigned("rack")),
                Baremetal.group_id.in_(assigned("baremetal_group")),
            )
        )
        return or_(
            VirtualMachine.id.in_(assigned("virtual_machine")),
            VirtualMachine.k8s_cluster_id.in_(assigned("k8s_cluster")),
            VirtualMachine.baremetal_id.in_(servers),
            VirtualMachine.tenant_id.in_(assigned("tenant")),
        )
    if model is K8sCluster:
        return or_(
            K8sCluster.id.in_(assigned("k8s_cluster")),
            K8sCluster.group_id.in_(assigned("baremetal_group")),
            K8sCluster.tenant_id.in_(assigned("tenant")),
        )
    raise ValueError(f"no maintainer visibility rule for {model.__name__}")


# --- assignments ---------------------------------------------------------------------------------


def resource_or_error(resource_type: str, resource_id: int) -> Any:
    if resource_type not in ASSIGNABLE_TYPES:
        raise MaintainerError(_("%(type)s cannot have maintainers.", type=repr(resource_type)))
    resource = db.session.get(RESOURCE_MODELS[resource_type], resource_id)
    if resource is None:
        raise MaintainerError(_("No %(noun)s %(id)s.", noun=RESOURCE_NOUNS[resource_type],
                                id=resource_id))
    return resource


def assign(
    resource_type: str,
    resource_id: int,
    *,
    user: User | None,
    maintainer_id: int | None = None,
    group_id: int | None = None,
    responsibility: str = "",
) -> ResourceMaintainer:
    """Assign a person or a group (exactly one) to a resource; a duplicate is refused."""
    resource = resource_or_error(resource_type, resource_id)
    if (maintainer_id is None) == (group_id is None):
        raise MaintainerError(_("Choose a person or a group (one of them)."), "assignee")
    responsibility = (responsibility or "").strip()
    if len(responsibility) > 255:
        raise MaintainerError(_("A responsibility has at most 255 characters."),
                              "responsibility")
    if maintainer_id is not None:
        person = db.session.get(Maintainer, maintainer_id)
        if person is None:
            raise MaintainerError(_("No such maintainer."), "assignee")
        who, column, value = person.name, ResourceMaintainer.maintainer_id, person.id
    else:
        group = db.session.get(MaintainerGroup, group_id)
        if group is None:
            raise MaintainerError(_("No such maintainer group."), "assignee")
        who, column, value = (_("group %(name)s", name=group.name),
                              ResourceMaintainer.maintainer_group_id, group.id)
    duplicate = db.session.scalar(
        select(ResourceMaintainer.id).where(
            ResourceMaintainer.resource_type == resource_type,
            ResourceMaintainer.resource_id == resource.id,
            column == value,
        )
    )
    if duplicate is not None:
        raise MaintainerError(
            _("%(who)s is already assigned to %(noun)s %(name)s.", who=who,
              noun=RESOURCE_NOUNS[resource_type], name=resource.name),
            "assignee",
        )
    row = ResourceMaintainer(
        resource_type=resource_type,
        resource_id=resource.id,
        responsibility=responsibility,
        maintainer_id=maintainer_id,
        maintainer_group_id=group_id,
        created_by=user.id if user is not None else None,
    )
    db.session.add(row)
    db.session.flush()
    record(
        "assign",
        resource_type,
        resource.id,
        resource.name,
        _assignee_change(row, "to", person.name if maintainer_id is not None else group.name,
                         responsibility),
        user=user,
    )
    db.session.commit()
    return row


def _assignee_change(row: ResourceMaintainer, side: str, name: str,
                     responsibility: str) -> dict[str, Any]:
    """An assignment's audit changes: the person's or the group's name under its own
    field, and the responsibility when there is one (names and data only: the audit page
    words them in the reader's language)."""
    key = "maintainer" if row.maintainer_id is not None else "maintainer_group"
    other = "to" if side == "from" else "from"
    changes = {key: {side: name, other: None}}
    if responsibility:
        changes["responsibility"] = {side: responsibility, other: None}
    return changes


def unassign(
    assignment_id: int,
    *,
    user: User | None,
    resource_type: str | None = None,
    resource_id: int | None = None,
) -> None:
    row = db.session.get(ResourceMaintainer, assignment_id)
    if row is None or (
        resource_type is not None
        and (row.resource_type != resource_type or row.resource_id != resource_id)
    ):
        raise MaintainerError(_("No such assignment."))
    resource = resource_or_error(row.resource_type, row.resource_id)
    record(
        "unassign",
        row.resource_type,
        row.resource_id,
        resource.name,
        _assignee_change(row, "from", (row.maintainer or row.maintainer_group).name,
                         row.responsibility),
        user=user,
    )
    db.session.delete(row)
    db.session.commit()


def search_assignees(q: str, limit: int = 10) -> tuple[list[Maintainer], list[MaintainerGroup]]:
    """Active people and groups whose name, account or email contains q (search-as-you-type)."""
    q = (q or "").strip()
    if not q:
        return [], []
    from portal.web.listing import escape_like

    pattern = f"%{escape_like(q)}%"
    people = db.session.scalars(
        select(Maintainer)
        .where(
            Maintainer.status == "active",
            or_(
                Maintainer.name.ilike(pattern, escape="\\"),
                Maintainer.account.ilike(pattern, escape="\\"),
                Maintainer.email.ilike(pattern, escape="\\"),
            ),
        )
        .order_by(Maintainer.name)
        .limit(limit)
    ).all()
    groups = db.session.scalars(
        select(MaintainerGroup)
        .where(MaintainerGroup.name.ilike(pattern, escape="\\"))
        .order_by(MaintainerGroup.name)
        .limit(limit)
    ).all()
    return list(people), list(groups)


# --- maintainers ------------------------------------------------------------------------

MAINTAINER_FIELDS = ("name", "account", "email", "phone", "status", "user_id")


def save_maintainer(
    maintainer: Maintainer | None,
    *,
    user: User | None,
    name: str,
    account: str,
    email: str = "",
    phone: str = "",
    status: str = "active",
    username: str = "",
) -> Maintainer:
    """Create (maintainer None) or update a maintainer; link a login by username."""
    name, account = text.clean(name), text.clean(account).lower()
    for value, key, what in ((name, "name", _("The name")),
                            (account, "account", _("The account"))):
        if hidden := text.name_problem(value, what):
            raise MaintainerError(hidden, key)
    if not name or len(name) > 128:
        raise MaintainerError(_("A name is 1 to 128 characters."), "name")
    if not ACCOUNT_PATTERN.match(account):
        raise MaintainerError(
            _("An account is lowercase letters, digits, '.', '_' or '-' (up to 64), starting "
              "with a letter or digit."),
            "account",
        )
    if status not in ("active", "inactive"):
        raise MaintainerError(_("A maintainer is active or inactive."), "status")
    email = (email or "").strip()
    if email and not re.match(r"^[^@\s]+@[^@\s]+$", email):
        raise MaintainerError(_("%(email)s is not an email address.", email=email), "email")
    taken = db.session.scalar(select(Maintainer.id).where(Maintainer.account == account))
    if taken is not None and (maintainer is None or taken != maintainer.id):
        raise MaintainerError(_("Account %(account)s is taken.", account=account), "account")
    user_id = None
    if (username or "").strip():
        linked = db.session.scalar(select(User).where(User.username == username.strip()))
        if linked is None:
            raise MaintainerError(_("No login account %(username)s.", username=username.strip()),
                                  "username")
        other = db.session.scalar(select(Maintainer.id).where(Maintainer.user_id == linked.id))
        if other is not None and (maintainer is None or other != maintainer.id):
            raise MaintainerError(
                _("%(username)s is already linked to another maintainer.",
                  username=linked.username), "username"
            )
        user_id = linked.id
    values = {"name": name, "account": account, "email": email,
              "phone": (phone or "").strip(), "status": status, "user_id": user_id}
    if maintainer is None:
        maintainer = audited_create(Maintainer(**values), "maintainer", MAINTAINER_FIELDS, user)
    else:
        audited_update(maintainer, "maintainer", MAINTAINER_FIELDS, values, user)
    db.session.commit()
    return maintainer


def managed_groups(maintainer: Maintainer) -> list[MaintainerGroup]:
    return list(
        db.session.scalars(
            select(MaintainerGroup)
            .where(MaintainerGroup.manager_id == maintainer.id)
            .order_by(MaintainerGroup.name)
        )
    )


def delete_maintainer(
    maintainer: Maintainer, *, user: User | None, leave_groups_without_manager: bool = False
) -> None:
    """Memberships and assignments go with the person (the database cascades). A group
    they manage is left without a manager only when the caller confirmed it by name."""
    managed = managed_groups(maintainer)
    if managed and not leave_groups_without_manager:
        names = ", ".join(g.name for g in managed)
        raise MaintainerError(
            _("%(name)s manages %(groups)s: confirm that these groups are left without a "
              "manager, or give them another manager first.", name=maintainer.name, groups=names)
        )
    assignments = db.session.scalar(
        select(func.count(ResourceMaintainer.id)).where(
            ResourceMaintainer.maintainer_id == maintainer.id
        )
    )
    record(
        "delete",
        "maintainer",
        maintainer.id,
        maintainer.name,
        {
            "assignments": {"from": assignments, "to": 0},
            "manages": {"from": ", ".join(g.name for g in managed) or None, "to": None},
        },
        user=user,
    )
    db.session.delete(maintainer)
    db.session.commit()


# --- groups ---------------------------------------------------------------------------------------


def save_group(
    group: MaintainerGroup | None,
    *,
    user: User | None,
    name: str,
    description: str = "",
    manager_id: int | None = None,
) -> MaintainerGroup:
    fields = ("name", "description", "manager_id")
    name = text.clean(name)
    if hidden := text.name_problem(name, _("The group name")):
        raise MaintainerError(hidden, "name")
    if not name or len(name) > 128:
        raise MaintainerError(_("A group name is 1 to 128 characters."), "name")
    if problem := text.too_long(text.clean(description), text.MAX_DESCRIPTION):
        raise MaintainerError(problem, "description")
    taken = db.session.scalar(select(MaintainerGroup.id).where(MaintainerGroup.name == name))
    if taken is not None and (group is None or taken != group.id):
        raise MaintainerError(_("A group named %(name)s exists.", name=name), "name")
    manager = None
    if manager_id is not None:
        manager = db.session.get(Maintainer, manager_id)
        if manager is None:
            raise MaintainerError(_("No such maintainer."), "manager_id")
    values = {"name": name, "description": (description or "").strip(),
              "manager_id": manager.id if manager else None}
    if group is None:
        group = audited_create(MaintainerGroup(**values), "maintainer_group", fields, user)
    else:
        audited_update(group, "maintainer_group", fields, values, user)
        db.session.flush()
    if manager is not None and not is_member(manager.id, group.id):
        # The manager is a member: making someone manager adds them.
        db.session.add(MaintainerToMaintainerGroup(maintainer_id=manager.id, group_id=group.id))
    db.session.commit()
    return group


def delete_group(group: MaintainerGroup, *, user: User | None) -> None:
    assignments = db.session.scalar(
        select(func.count(ResourceMaintainer.id)).where(
            ResourceMaintainer.maintainer_group_id == group.id
        )
    )
    record(
        "delete",
        "maintainer_group",
        group.id,
        group.name,
        {"assignments": {"from": assignments, "to": 0}},
        user=user,
    )
    db.session.delete(group)
    db.session.commit()


def is_member(maintainer_id: int, group_id: int) -> bool:
    return (
        db.session.scalar(
            select(MaintainerToMaintainerGroup.id).where(
                MaintainerToMaintainerGroup.maintainer_id == maintainer_id,
                MaintainerToMaintainerGroup.group_id == group_id,
            )
        )
        is not None
    )


def add_member(group: MaintainerGroup, maintainer_id: int | None, *, user: User | None) -> None:
    person = db.session.get(Maintainer, maintainer_id) if maintainer_id is not None else None
    if person is None:
        raise MaintainerError(_("Choose a maintainer."), "maintainer_id")
    if is_member(person.id, group.id):
        raise MaintainerError(_("%(person)s is already in %(group)s.", person=person.name,
                                group=group.name), "maintainer_id")
    db.session.add(MaintainerToMaintainerGroup(maintainer_id=person.id, group_id=group.id))
    record(
        "update",
        "maintainer_group",
        group.id,
        group.name,
        {"member": {"from": None, "to": person.name}},
        user=user,
    )
    db.session.commit()


def remove_member(group: MaintainerGroup, maintainer_id: int | None, *, user: User | None) -> None:
    link = db.session.scalar(
        select(MaintainerToMaintainerGroup).where(
            MaintainerToMaintainerGroup.group_id == group.id,
            MaintainerToMaintainerGroup.maintainer_id == maintainer_id,
        )
    )
    if link is None:
        raise MaintainerError(_("Not a member of this group."))
    if group.manager_id == maintainer_id:
        raise MaintainerError(
            _("%(person)s manages %(group)s: choose another manager before removing them.",
              person=link.maintainer.name, group=group.name)
        )
    record(
        "update",
        "maintainer_group",
        group.id,
        group.name,
        {"member": {"from": link.maintainer.name, "to": None}},
        user=user,
    )
    db.session.delete(link)
    db.session.commit()


def group_members(group: MaintainerGroup) -> list[MaintainerToMaintainerGroup]:
    """Manager first, then the members by name."""
    links = db.session.scalars(
        select(MaintainerToMaintainerGroup)
        .options(joinedload(MaintainerToMaintainerGroup.maintainer))
        .where(MaintainerToMaintainerGroup.group_id == group.id)
    ).all()
    return sorted(links, key=lambda m: (m.maintainer_id != group.manager_id, m.maintainer.name))


def groups_with_counts() -> list[tuple[MaintainerGroup, int]]:
    counts = dict(
        db.session.execute(
            select(MaintainerToMaintainerGroup.group_id, func.count()).group_by(
                MaintainerToMaintainerGroup.group_id
            )
        ).all()
    )
    groups = (
        db.session.scalars(
            select(MaintainerGroup)
            .options(selectinload(MaintainerGroup.memberships), joinedload(MaintainerGroup.manager))
            .order_by(MaintainerGroup.name)
        )
        .unique()
        .all()
    )
    return [(g, counts.get(g.id, 0)) for g in groups]


# --- what a resource page shows -----------------------------------------------------------------


@dataclass
class Panel:
    resource_type: str
    resource: Any
    rows: list[PanelRow]
    call: list[PanelRow] | None  # "who to call" when the resource is in error/maintenance
    can_manage: bool

    @property
    def noun(self) -> str:
        return RESOURCE_NOUNS[self.resource_type]


def panel_for(resource_type: str, resource: Any, can_manage: bool) -> Panel:
    """The Maintainers panel of a resource page: its own assignments (inherited ones only
    in the who-to-call box, which shows when the resource needs someone)."""
    rows = maintainers_panel(resource_type, resource, inherit=False)
    return Panel(resource_type, resource, rows, who_to_call(resource_type, resource), can_manage)
