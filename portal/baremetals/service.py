"""Operations on servers: create, edit, status, move between groups, delete, CSV import.

Pages, imports and the API call these same functions. Placement in a rack is checked here
so they all get the same clear message; the database refuses the same mistakes as a last
line. Capacity counters move with atomic SQL updates in the caller's transaction, so they
stay exact (portal.baremetals.counters) whatever else runs concurrently.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

from sqlalchemy import func, or_, select, union_all, update
from sqlalchemy.orm import joinedload

from portal.audit.service import diff, record, snapshot
from portal.auth.access import visible_only
from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.models import (
    BAREMETAL_STATUSES,
    DIMENSIONS,
    HOLDING_STATUSES,
    LIVE_JOB_STATUSES,
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    MaintainerToMaintainerGroup,
    ProvisionJob,
    Rack,
    ResourceMaintainer,
    User,
    VirtualMachine,
)
from portal.text import clean, name_problem
from portal.vms.service import validate_name

# Statuses a server may not take while VMs still hold resources on it; maintenance only
# stops new placements, so it is allowed.
EMPTY_ONLY_STATUSES = ("offline", "decommissioned")
AUDITED = (
    "name", "serial", "status", "region", "dc", "rack_id", "rack_unit", "size_u", "group_id",
    "total_cpu", "total_memory", "total_storage", "hypervisor_uri",
)
UNIT_OF = {"cpu": "cores", "memory": "GiB memory", "storage": "GiB storage"}
# "Total memory is a whole number of GiB, 0 or more." per dimension.
TOTAL_PROBLEM = {
    "cpu": _l("Total CPU is a whole number of cores, 0 or more."),
    "memory": _l("Total memory is a whole number of GiB, 0 or more."),
    "storage": _l("Total storage is a whole number of GiB, 0 or more."),
}
MAX_TOTAL = 10**9
NAMED = 10  # how many blocking VMs a refusal names before it says "and N more"
MAX_URI_LENGTH = 512
# driver[+transport]://[user@][host][:port]/[path][?query], as libvirt writes its URIs:
# qemu:///system, qemu+ssh://root@kvm-01/system?keyfile=/etc/portal/id, test:///default.
HYPERVISOR_URI = re.compile(
    r"^[a-z][a-z0-9]*(\+[a-z][a-z0-9-]*)?://[^\s/?#]*(/[^\s?#]*)?(\?[^\s#]*)?$")


class ServerInvalid(ValueError):
    """The change is refused; ``errors`` maps each field to what is wrong with it. The key
    "server" holds refusals that concern the whole server (delete)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class ServerFields:
    """What a form, an API body or a CSV row says a server should be."""

    name: str
    serial: str
    status: str = "active"
    region: str = ""
    dc: str = ""
    rack_id: int | None = None
    rack_unit: int | None = None
    size_u: int = 1
    group_id: int | None = None
    total_cpu: int = 0
    total_memory: int = 0
    total_storage: int = 0
    hypervisor_uri: str | None = None

    def totals(self) -> dict[str, int]:
        return {d: getattr(self, f"total_{d}") for d in DIMENSIONS}

    @classmethod
    def of(cls, server: Baremetal) -> ServerFields:
        return cls(**{f.name: getattr(server, f.name) for f in fields(cls)})


# ---- Rules (pure: the data they need is handed in) ---------------------------------------


def field_problems(data: ServerFields) -> dict[str, str]:
    """What is wrong with the values themselves, before looking at any other row (their
    text tidied first: trimmed, NFC)."""
    data.name, data.serial, data.region, data.dc = (
        clean(v) for v in (data.name, data.serial, data.region, data.dc))
    errors: dict[str, str] = {}
    problem = validate_name(data.name, "server")
    if problem:
        errors["name"] = problem
    if not data.serial:
        errors["serial"] = _("Give the server's serial number.")
    elif hidden := name_problem(data.serial, _("The serial")):
        errors["serial"] = hidden
    elif len(data.serial) > 64 or any(c.isspace() for c in data.serial):
        errors["serial"] = _("A serial has at most %(max)s characters and no spaces.", max=64)
    if data.status not in BAREMETAL_STATUSES:
        errors["status"] = _("Status is one of %(statuses)s.",
                             statuses=", ".join(BAREMETAL_STATUSES))
    if not isinstance(data.size_u, int) or not 1 <= data.size_u <= 60:
        errors["size_u"] = _("A server is 1 to 60 U high.")
    for d in DIMENSIONS:
        value = getattr(data, f"total_{d}")
        if not isinstance(value, int) or not 0 <= value <= MAX_TOTAL:
            errors[f"total_{d}"] = str(TOTAL_PROBLEM[d])
    for key, label in (("region", _("The region")), ("dc", _("The DC"))):
        if hidden := name_problem(getattr(data, key), label):
            errors[key] = hidden
        elif len(getattr(data, key)) > 64:
            errors[key] = _("At most %(max)s characters.", max=64)
    if data.rack_id is None and data.rack_unit is not None:
        errors["rack_unit"] = _("Choose a rack for this unit, or leave the unit empty.")
    data.hypervisor_uri = clean(data.hypervisor_uri or "") or None
    if problem := hypervisor_uri_problem(data.hypervisor_uri):
        errors["hypervisor_uri"] = problem
    return errors


def hypervisor_uri_problem(uri: str | None) -> str | None:
    """Why ``uri`` is no libvirt connection URI, or None (an empty one is fine: the
    server is not managed through libvirt)."""
    if uri is None:
        return None
    if hidden := name_problem(uri, _("The hypervisor URI")):
        return hidden
    if len(uri) > MAX_URI_LENGTH:
        return _("A hypervisor URI has at most %(limit)s characters (this one has %(length)s).",
                 limit=MAX_URI_LENGTH, length=len(uri))
    if not HYPERVISOR_URI.match(uri):
        return _("A hypervisor URI is a libvirt connection URI such as "
                 "qemu+ssh://root@host/system or qemu:///system (no spaces).")
    return None


def take_location_from_rack(data: ServerFields, rack: Rack) -> dict[str, str]:
    """Region and dc default from the rack; a different one is a mistake worth saying."""
    errors = {}
    for key in ("region", "dc"):
        given, of_rack = getattr(data, key), getattr(rack, key)
        if not given:
            setattr(data, key, of_rack)
        elif given != of_rack and key == "region":
            errors[key] = _("Rack %(rack)s is in region %(value)s; leave region empty to take "
                            "the rack's.", rack=rack.name, value=of_rack)
        elif given != of_rack:
            errors[key] = _("Rack %(rack)s is in DC %(value)s; leave DC empty to take the "
                            "rack's.", rack=rack.name, value=of_rack)
    return errors


def unit_span(unit: int, size_u: int) -> str:
    """U10–U11, or U7 for a 1 U server."""
    top = unit + size_u - 1
    return f"U{unit}" if top == unit else f"U{unit}–U{top}"


def position_problem(
    rack: Rack, unit: int | None, size_u: int, occupants: Iterable[tuple[str, int, int]]
) -> str | None:
    """Why a server cannot sit at `unit` given the occupants (label, unit, size_u)."""
    if unit is None:
        return _("Choose the unit of rack %(rack)s the server sits in (1–%(height)s).",
                 rack=rack.name, height=rack.height_u)
    if size_u < 1:
        return _("A server is at least 1 U high.")
    top = unit + size_u - 1
    if unit < 1 or top > rack.height_u:
        return _("Units %(unit)s–%(top)s do not fit in rack %(rack)s, which has units "
                 "1–%(height)s.", unit=unit, top=top, rack=rack.name, height=rack.height_u)
    clash = sorted(
        (u, label, s) for label, u, s in occupants if u <= top and u + s - 1 >= unit
    )
    if clash:
        taken = ", ".join(f"{label} ({unit_span(u, s)})" for u, label, s in clash)
        if top == unit:
            return _("Unit %(unit)s of rack %(rack)s is taken by %(taken)s.",
                     unit=unit, rack=rack.name, taken=taken)
        return _("Units %(unit)s–%(top)s of rack %(rack)s are taken by %(taken)s.",
                 unit=unit, top=top, rack=rack.name, taken=taken)
    return None


def rack_position_problem(
    rack: Rack, unit: int | None, size_u: int, ignore_id: int | None = None
) -> str | None:
    """Why a server of size_u units cannot sit at `unit` of `rack`, or None when it can."""
    if unit is None or size_u < 1:
        return position_problem(rack, unit, size_u, ())
    top = unit + size_u - 1
    clash = db.session.execute(
        select(Baremetal.name, Baremetal.rack_unit, Baremetal.size_u).where(
            Baremetal.rack_id == rack.id,
            Baremetal.rack_unit <= top,
            Baremetal.rack_unit + Baremetal.size_u - 1 >= unit,
            Baremetal.id != (ignore_id or 0),
        )
    ).all()
    return position_problem(rack, unit, size_u, [tuple(row) for row in clash])


def _blocking(what: str, vm_names: list[str], count: int) -> str:
    """"Server x cannot be deleted while 2 VMs hold resources on it: a, b." """
    named = ", ".join(vm_names[:NAMED])
    if count > NAMED:
        named = _("%(names)s and %(num)s more", names=named, num=count - NAMED)
    return _n("%(what)s while %(num)s VM holds resources on it: %(vms)s.",
              "%(what)s while %(num)s VMs hold resources on it: %(vms)s.",
              count, what=what, vms=named)


def _amount(dimension: str, value: int) -> str:
    """4 cores, 16 GiB memory, 200 GiB storage."""
    if dimension == "cpu":
        return _n("%(num)s core", "%(num)s cores", value)
    if dimension == "memory":
        return _("%(num)s GiB memory", num=value)
    return _("%(num)s GiB storage", num=value)


def _status_word(status: str) -> str:
    words = {"offline": _("offline"), "decommissioned": _("decommissioned"),
             "maintenance": _("maintenance"), "active": _("active")}
    return words.get(status, status)


def capacity_problems(name: str, totals: dict[str, int], used: dict[str, int]) -> dict[str, str]:
    """A total may not go below what the server's VMs already use."""
    return {
        f"total_{d}": _("Server %(name)s has %(used)s allocated to its VMs: the total cannot "
                        "go below %(num)s.", name=name, used=_amount(d, used[d]), num=used[d])
        for d in DIMENSIONS
        if totals[d] < used.get(d, 0)
    }


def status_problem(name: str, status: str, holding: tuple[list[str], int]) -> str | None:
    names, count = holding
    if status in EMPTY_ONLY_STATUSES and count:
        return _blocking(_("Server %(name)s cannot go %(status)s", name=name,
                           status=_status_word(status)), names, count)
    return None


def group_problem(name: str, holding: tuple[list[str], int]) -> str | None:
    names, count = holding
    if count:
        return _blocking(_("Server %(name)s cannot change group", name=name), names, count)
    return None


# ---- Reads --------------------------------------------------------------------------------


def _holders(server_ids: list[int], *columns):
    """VMs holding resources on these servers, as (server id, *columns) rows: those placed
    there, and those migrating there (their live migrate job's target, SPEC 8.1)."""
    placed = select(VirtualMachine.baremetal_id.label("server_id"), *columns).where(
        VirtualMachine.baremetal_id.in_(server_ids),
        VirtualMachine.status.in_(HOLDING_STATUSES),
    )
    arriving = (
        select(ProvisionJob.target_baremetal_id.label("server_id"), *columns)
        .join(VirtualMachine, VirtualMachine.id == ProvisionJob.vm_id)
        .where(
            ProvisionJob.target_baremetal_id.in_(server_ids),
            ProvisionJob.action == "migrate",
            ProvisionJob.status.in_(LIVE_JOB_STATUSES),
            VirtualMachine.status == "migrating",
        )
    )
    return union_all(placed, arriving).subquery()


def holding_vms(server_ids: Iterable[int]) -> dict[int, tuple[list[str], int]]:
    """Per server: names of the first VMs holding resources on it (by name), and how many
    (VMs migrating to it count: they hold there too)."""
    ids = list(server_ids)
    if not ids:
        return {}
    found: dict[int, tuple[list[str], int]] = {}
    holders = _holders(ids, VirtualMachine.name)
    rows = db.session.execute(
        select(holders.c.server_id, holders.c.name).order_by(holders.c.server_id, holders.c.name)
    )
    for server_id, name in rows:
        names, count = found.get(server_id, ([], 0))
        if len(names) < NAMED:
            names.append(name)
        found[server_id] = (names, count + 1)
    return found


def used_resources(server_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per server: what the VMs holding resources on it use (migrating ones included)."""
    ids = list(server_ids)
    if not ids:
        return {}
    holders = _holders(ids, *(getattr(VirtualMachine, d) for d in DIMENSIONS))
    rows = db.session.execute(
        select(holders.c.server_id, *(func.sum(holders.c[d]) for d in DIMENSIONS))
        .group_by(holders.c.server_id)
    )
    return {row[0]: dict(zip(DIMENSIONS, row[1:], strict=True)) for row in rows}


@dataclass
class ServerOverview:
    vms: list[VirtualMachine]
    clusters: list[K8sCluster]

    @property
    def holding(self) -> list[VirtualMachine]:
        return [vm for vm in self.vms if vm.status in HOLDING_STATUSES]


def server_overview(server: Baremetal) -> ServerOverview:
    """The VMs on a server (not the deleted ones) and the clusters they belong to."""
    vms = list(
        db.session.scalars(
            visible_only(select(VirtualMachine), VirtualMachine)
            .where(VirtualMachine.baremetal_id == server.id, VirtualMachine.status != "deleted")
            .options(
                joinedload(VirtualMachine.tenant),
                joinedload(VirtualMachine.spec),
                joinedload(VirtualMachine.cluster).joinedload(K8sCluster.tenant),
            )
            .order_by(VirtualMachine.name, VirtualMachine.id)
        )
    )
    clusters = {vm.cluster.id: vm.cluster for vm in vms if vm.cluster is not None}
    return ServerOverview(vms, sorted(clusters.values(), key=lambda c: c.name))


def may_change_status(user: User, server: Baremetal) -> bool:
    """Operators: any server. Maintainers: servers assigned to them, directly or through
    one of their maintainer groups."""
    if user.is_operator:
        return True
    maintainer = user.maintainer
    if maintainer is None:
        return False
    groups = select(MaintainerToMaintainerGroup.group_id).where(
        MaintainerToMaintainerGroup.maintainer_id == maintainer.id
    )
    return db.session.scalar(
        select(ResourceMaintainer.id).where(
            ResourceMaintainer.resource_type == "baremetal",
            ResourceMaintainer.resource_id == server.id,
            or_(
                ResourceMaintainer.maintainer_id == maintainer.id,
                ResourceMaintainer.maintainer_group_id.in_(groups),
            ),
        ).limit(1)
    ) is not None


# ---- Counter moves ------------------------------------------------------------------------


def _shift_group(group_id: int | None, total: dict[str, int], available: dict[str, int],
                 sign: int) -> None:
    """Add (sign 1) or remove (sign -1) a server's counters to/from a group, atomically."""
    if group_id is None:
        return
    values = {}
    for d in DIMENSIONS:
        values[f"total_{d}"] = getattr(BaremetalGroup, f"total_{d}") + sign * total[d]
        values[f"available_{d}"] = getattr(BaremetalGroup, f"available_{d}") + sign * available[d]
    db.session.execute(update(BaremetalGroup).where(BaremetalGroup.id == group_id).values(**values))


def _locked_counters(server_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """The server's counters as stored now, its row locked until commit (PostgreSQL)."""
    row = db.session.execute(
        select(
            *(getattr(Baremetal, f"total_{d}") for d in DIMENSIONS),
            *(getattr(Baremetal, f"available_{d}") for d in DIMENSIONS),
        )
        .where(Baremetal.id == server_id)
        .with_for_update()
    ).one()
    n = len(DIMENSIONS)
    return dict(zip(DIMENSIONS, row[:n], strict=True)), dict(zip(DIMENSIONS, row[n:], strict=True))


# ---- Writes -------------------------------------------------------------------------------


def _get(model, object_id):
    return db.session.get(model, object_id) if isinstance(object_id, int) else None


def _check(
    data: ServerFields, server: Baremetal | None
) -> tuple[Rack | None, BaremetalGroup | None]:
    """Every rule for one server against the database; raise ServerInvalid naming each
    bad field."""
    errors = field_problems(data)
    rack = _get(Rack, data.rack_id)
    if data.rack_id is not None and rack is None:
        errors["rack_id"] = _("Choose an existing rack.")
    group = _get(BaremetalGroup, data.group_id)
    if data.group_id is not None and group is None:
        errors["group_id"] = _("Choose an existing group.")
    if rack is not None:
        errors.update(take_location_from_rack(data, rack))
        if "size_u" not in errors and "rack_unit" not in errors:
            problem = rack_position_problem(rack, data.rack_unit, data.size_u,
                                            server.id if server else None)
            if problem:
                errors["rack_unit"] = problem
    own_id = server.id if server is not None else 0
    for key in ("name", "serial"):
        if key in errors:
            continue
        column = getattr(Baremetal, key)
        other = db.session.scalar(select(Baremetal.name).where(column == getattr(data, key),
                                                               Baremetal.id != own_id))
        if other is not None:
            errors[key] = (_("Server %(name)s already has this name.", name=other)
                           if key == "name" else
                           _("Serial %(serial)s belongs to server %(name)s.",
                             serial=data.serial, name=other))
    if server is not None:
        holding = holding_vms([server.id]).get(server.id, ([], 0))
        if "status" not in errors and data.status != server.status:
            problem = status_problem(server.name, data.status, holding)
            if problem:
                errors["status"] = problem
        if "group_id" not in errors and data.group_id != server.group_id:
            problem = group_problem(server.name, holding)
            if problem:
                errors["group_id"] = problem
        errors.update({
            k: v for k, v in capacity_problems(
                server.name, data.totals(), used_resources([server.id]).get(server.id, {})
            ).items() if k not in errors
        })
    if errors:
        raise ServerInvalid(errors)
    return rack, group


def _insert(data: ServerFields, rack: Rack | None) -> Baremetal:
    totals = data.totals()
    server = Baremetal(
        name=data.name, serial=data.serial, status=data.status, region=data.region, dc=data.dc,
        size_u=data.size_u, group_id=data.group_id, hypervisor_uri=data.hypervisor_uri,
        **{f"total_{d}": v for d, v in totals.items()},
        **{f"available_{d}": v for d, v in totals.items()},
    )
    if rack is not None:
        server.rack = rack
        server.rack_unit = data.rack_unit
    db.session.add(server)
    db.session.flush()
    _shift_group(data.group_id, totals, totals, 1)
    record("create", "baremetal", server.id, server.name, diff({}, snapshot(server, AUDITED)))
    return server


def _apply(server: Baremetal, data: ServerFields, rack: Rack | None, action: str = "update",
           before: dict | None = None) -> Baremetal:
    """Write validated fields onto an existing server, moving every counter with it."""
    before = before or snapshot(server, AUDITED)
    old_total, old_available = _locked_counters(server.id)
    new_total = data.totals()
    delta = {d: new_total[d] - old_total[d] for d in DIMENSIONS}
    new_available = {d: old_available[d] + delta[d] for d in DIMENSIONS}
    moving = data.group_id != server.group_id
    if moving:
        _shift_group(server.group_id, old_total, old_available, -1)
    elif any(delta.values()):
        _shift_group(server.group_id, delta, delta, 1)
    if any(delta.values()):
        # Relative to the stored row, so a VM placed meanwhile is not lost.
        db.session.execute(
            update(Baremetal).where(Baremetal.id == server.id).values(**{
                **{f"total_{d}": new_total[d] for d in DIMENSIONS},
                **{f"available_{d}": getattr(Baremetal, f"available_{d}") + delta[d]
                   for d in DIMENSIONS},
            })
        )
    if moving:
        _shift_group(data.group_id, new_total, new_available, 1)
    server.name, server.serial, server.status = data.name, data.serial, data.status
    server.region, server.dc, server.size_u = data.region, data.dc, data.size_u
    server.group_id = data.group_id
    server.hypervisor_uri = data.hypervisor_uri
    if rack is None:
        server.rack = None
        server.rack_unit = None
    else:
        server.rack = rack
        server.rack_unit = data.rack_unit
    db.session.flush()
    db.session.expire(server, ["group", *(f"{k}_{d}" for k in ("total", "available")
                                          for d in DIMENSIONS)])
    changes = diff(before, snapshot(server, AUDITED))
    if changes:
        record(action, "baremetal", server.id, server.name, changes)
    return server


def create_server(data: ServerFields) -> Baremetal:
    rack, _group = _check(data, None)
    server = _insert(data, rack)
    db.session.commit()
    return server


def update_server(server: Baremetal, data: ServerFields) -> Baremetal:
    """Edit a server (its group changes only through move_server)."""
    data.group_id = server.group_id
    rack, _group = _check(data, server)
    _apply(server, data, rack)
    db.session.commit()
    return server


def change_status(server: Baremetal, status: str) -> Baremetal:
    data = ServerFields.of(server)
    data.status = status
    rack, _group = _check(data, server)
    _apply(server, data, rack, action="status")
    db.session.commit()
    return server


def move_server(server: Baremetal, group_id: int | None) -> Baremetal:
    """Move a server to another group (or none); its counters move with it."""
    data = ServerFields.of(server)
    data.group_id = group_id
    rack, _group = _check(data, server)
    _apply(server, data, rack, action="move")
    db.session.commit()
    return server


def delete_server(server: Baremetal) -> None:
    """Delete a server that hosts no VM holding resources. Its assignments go with it
    (database trigger); VMs kept for history lose their server."""
    names, count = holding_vms([server.id]).get(server.id, ([], 0))
    if count:
        what = _("Server %(name)s cannot be deleted", name=server.name)
        raise ServerInvalid({"server": _blocking(what, names, count)})
    total, available = _locked_counters(server.id)
    _shift_group(server.group_id, total, available, -1)
    record("delete", "baremetal", server.id, server.name,
           diff(snapshot(server, AUDITED), {k: None for k in AUDITED}))
    db.session.delete(server)
    db.session.commit()


# ---- CSV import ---------------------------------------------------------------------------

IMPORT_COLUMNS = (
    "name", "serial", "status", "region", "dc", "rack", "rack_unit", "size_u", "group",
    "total_cpu", "total_memory", "total_storage", "hypervisor_uri",
)
INT_COLUMNS = ("rack_unit", "size_u", "total_cpu", "total_memory", "total_storage")
MAX_IMPORT_ROWS = 5000
TEMPLATE_ROWS = (
    ("tpe1-c1-101", "SN0000000101", "active", "", "", "tpe1-r01", "20", "1", "tw-north-general",
     "64", "256", "2000", "qemu+ssh://root@tpe1-c1-101/system"),
    ("台北-gpu-01", "SN0000000102", "maintenance", "tw-north", "tpe1", "", "", "2", "", "96",
     "768", "4000", ""),
)


class ImportRefused(ValueError):
    """Nothing was imported; ``problems`` holds one "line N: reason" per bad row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: int


@dataclass
class _Row:
    line: int
    cells: dict[str, str]
    data: ServerFields | None = None
    server: Baremetal | None = None
    rack: Rack | None = None


def decode_upload(raw: bytes) -> str:
    """An uploaded file as text: UTF-8, with or without a byte-order mark."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused([
            _('The file is not UTF-8 text (byte %(byte)s): save it as "CSV UTF-8".',
              byte=error.start + 1)
        ]) from None


def csv_template() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(IMPORT_COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return buffer.getvalue()


def _parse(text: str) -> tuple[list[_Row], list[str]]:
    """The rows of the file, and the lines that are not rows at all (wrong cell count)."""
    if "\x00" in text:  # PostgreSQL cannot store it, and no CSV tool writes it
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportRefused([_line(line, _("a NUL character (U+0000); save the file as "
                                           "plain CSV text."))])
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused([_line(1, _("the file is empty; the first line names the "
                                        "columns."))]) from None
    except csv.Error as error:
        raise ImportRefused([_line(1, str(error))]) from None
    columns = [c.strip().lower() for c in header]
    problems = []
    unknown = [c for c in columns if c not in IMPORT_COLUMNS]
    if unknown:
        problems.append(_line(1, _n(
            "unknown column %(names)s; the columns are %(columns)s.",
            "unknown columns %(names)s; the columns are %(columns)s.", len(unknown),
            names=", ".join(repr(c) for c in unknown), columns=", ".join(IMPORT_COLUMNS))))
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        problems.append(_line(1, _("column %(names)s appears twice.",
                                   names=", ".join(doubled))))
    missing = [c for c in ("name", "serial") if c not in columns]
    if missing:
        problems.append(_line(1, _n("the header needs the column %(names)s.",
                                    "the header needs the columns %(names)s.", len(missing),
                                    names=_(" and ").join(missing))))
    if problems:
        raise ImportRefused(problems)
    rows: list[_Row] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                problems.append(_line(line, _("%(cells)s cells, but the header names "
                                              "%(columns)s columns.", cells=len(cells),
                                              columns=len(columns))))
                continue
            rows.append(_Row(line, {c: v.strip() for c, v in zip(columns, cells, strict=True)}))
    except csv.Error as error:
        problems.append(_line(reader.line_num, str(error)))
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportRefused([_("The file has %(rows)s rows; import at most %(max)s at a time.",
                               rows=len(rows), max=MAX_IMPORT_ROWS)])
    if not rows and not problems:
        raise ImportRefused([_("The file has a header but no rows.")])
    return rows, problems


def _row_fields(row: _Row, server: Baremetal | None, racks: dict[str, Rack],
                groups: dict[str, BaremetalGroup]) -> tuple[ServerFields, dict[str, str]]:
    """The row's server as it should be: the current values (or the defaults of a new
    server), overwritten by the row's non-empty cells."""
    cells = row.cells
    data = ServerFields.of(server) if server is not None else ServerFields(name="", serial="")
    errors: dict[str, str] = {}
    data.name, data.serial = cells["name"], cells["serial"]
    for key in ("status", "region", "dc", "hypervisor_uri"):
        if cells.get(key):
            setattr(data, key, cells[key])
    for key in INT_COLUMNS:
        value = cells.get(key, "")
        if value:
            try:
                setattr(data, key, int(value))
            except ValueError:
                errors[key] = _("%(column)s %(value)s is not a whole number.", column=key,
                                value=repr(value))
        elif server is None and key.startswith("total_"):
            errors[key] = _("%(column)s is required for a new server.", column=key)
    if cells.get("rack"):
        rack = racks.get(cells["rack"])
        if rack is None:
            errors["rack"] = _("there is no rack named %(name)s.", name=cells["rack"])
        else:
            if rack.id != data.rack_id:
                # A new rack: region and dc follow it unless the row says otherwise.
                data.region, data.dc = cells.get("region", ""), cells.get("dc", "")
            data.rack_id = rack.id
            row.rack = rack
    elif data.rack_id is not None:
        row.rack = db.session.get(Rack, data.rack_id)
    if cells.get("group"):
        group = groups.get(cells["group"])
        if group is None:
            errors["group"] = _("there is no group named %(name)s.", name=cells["group"])
        else:
            data.group_id = group.id
    return data, errors


def _validate_import(rows: list[_Row], problems: list[str]) -> list[str]:
    serials = {r.cells["serial"] for r in rows}
    names = {r.cells["name"] for r in rows}
    existing = {
        s.serial: s
        for s in db.session.scalars(select(Baremetal).where(Baremetal.serial.in_(serials)))
    }
    owners = dict(db.session.execute(
        select(Baremetal.name, Baremetal.serial).where(Baremetal.name.in_(names))
    ).all())
    racks = {r.name: r for r in db.session.scalars(
        select(Rack).where(Rack.name.in_({r.cells.get("rack") for r in rows} - {"", None})))}
    groups = {g.name: g for g in db.session.scalars(
        select(BaremetalGroup).where(
            BaremetalGroup.name.in_({r.cells.get("group") for r in rows} - {"", None})))}
    ids = [s.id for s in existing.values()]
    holding, used = holding_vms(ids), used_resources(ids)

    # Every problem of a row, in the order of the checks; one entry per row.
    found: dict[int, list[str]] = {row.line: [] for row in rows}
    unplaceable: set[int] = set()  # rows whose position cannot be checked
    first_serial: dict[str, int] = {}
    first_name: dict[str, int] = {}
    for row in rows:
        server = existing.get(row.cells["serial"])
        data, errors = _row_fields(row, server, racks, groups)
        # A cell that is no number, or an unknown rack, says all there is about its field.
        errors.update({k: v for k, v in field_problems(data).items() if k not in errors})
        if "rack" in errors:
            errors.pop("rack_unit", None)  # the unit of an unknown rack says nothing more
        if errors.keys() & {"rack", "rack_unit", "size_u"}:
            unplaceable.add(row.line)
        said = found[row.line]
        said.extend(errors.values())
        if row.rack is not None:
            said.extend(take_location_from_rack(data, row.rack).values())
        serial_line = first_serial.setdefault(data.serial, row.line)
        if serial_line != row.line:
            said.append(_("serial %(serial)s is also on line %(line)s.", serial=data.serial,
                          line=serial_line))
        name_line = first_name.setdefault(data.name, row.line)
        if name_line != row.line:
            said.append(_("name %(name)s is also on line %(line)s.", name=data.name,
                          line=name_line))
        elif "name" not in errors and owners.get(data.name, data.serial) != data.serial:
            said.append(_("server %(name)s already exists with serial %(serial)s.",
                          name=data.name, serial=owners[data.name]))
        if server is not None:
            blocking = holding.get(server.id, ([], 0))
            if "status" not in errors and data.status != server.status:
                if problem := status_problem(server.name, data.status, blocking):
                    said.append(problem)
            if "group" not in errors and data.group_id != server.group_id:
                if problem := group_problem(server.name, blocking):
                    said.append(problem)
            said.extend(message for key, message in capacity_problems(
                server.name, data.totals(), used.get(server.id, {})).items()
                if key not in errors)
        row.data, row.server = data, server

    # Positions: against the servers the file leaves where they are, and earlier rows.
    in_racks = {r.rack.id for r in rows if r.rack is not None}
    staying: dict[int, list[tuple[str, int, int]]] = {}
    for name, serial, rack_id, unit, size in db.session.execute(
        select(Baremetal.name, Baremetal.serial, Baremetal.rack_id, Baremetal.rack_unit,
               Baremetal.size_u).where(Baremetal.rack_id.in_(in_racks))
    ):
        if serial not in serials:
            staying.setdefault(rack_id, []).append((name, unit, size))
    # Rows with other problems are checked too, but take no units from the rows after them.
    placed: dict[int, list[tuple[str, int, int]]] = {}
    for row in rows:
        data = row.data
        if row.rack is None or row.line in unplaceable:
            continue
        occupants = staying.get(row.rack.id, []) + placed.get(row.rack.id, [])
        problem = position_problem(row.rack, data.rack_unit, data.size_u, occupants)
        if problem:
            found[row.line].append(problem)
        elif not found[row.line]:
            placed.setdefault(row.rack.id, []).append(
                (_("%(name)s on line %(line)s", name=data.name, line=row.line),
                 data.rack_unit, data.size_u)
            )
    problems = [*problems, *(_line(line, " ".join(_sentence(m) for m in said))
                             for line, said in found.items() if said)]
    return sorted(problems, key=lambda p: p.line)


class _Problem(str):
    """One "line N: …" entry of an import refusal, which knows its line."""

    line: int


def _line(line: int, problem: str) -> _Problem:
    entry = _Problem(_("line %(line)s: %(problem)s", line=line, problem=problem))
    entry.line = line
    return entry


def _sentence(message: str) -> str:
    message = message.strip()
    return message if message.endswith((".", "。")) else message + "."


def import_servers(text: str) -> ImportResult:
    """Create or update (by serial) every server of a CSV, all or nothing: every row is
    checked first and every bad row reported with its line number."""
    rows, unreadable = _parse(text)
    problems = _validate_import(rows, unreadable)
    if problems:
        db.session.rollback()
        raise ImportRefused(problems)
    result = ImportResult([], [], 0)
    # Servers that change place leave their units first, so that rows may swap or shift
    # servers in any order (PostgreSQL checks overlaps row by row).
    before: dict[int, dict] = {}
    for row in rows:
        server = row.server
        if server is not None and server.rack_id is not None and (
            (server.rack_id, server.rack_unit, server.size_u)
            != (row.data.rack_id, row.data.rack_unit, row.data.size_u)
        ):
            before[server.id] = snapshot(server, AUDITED)
            server.rack, server.rack_unit = None, None
    db.session.flush()
    for row in rows:
        if row.server is None:
            _insert(row.data, row.rack)
            result.created.append(row.data.name)
        elif row.data != ServerFields.of(row.server) or row.server.id in before:
            _apply(row.server, row.data, row.rack, action="import",
                   before=before.get(row.server.id))
            result.updated.append(row.data.name)
        else:
            result.unchanged += 1
    db.session.commit()
    return result
