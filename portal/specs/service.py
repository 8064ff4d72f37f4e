"""Flavors: the catalogue tenants choose from. A VM copies its flavor's resources when it is
placed, so editing or retiring a flavor never changes existing VMs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from portal import text
from portal.audit.service import audited_create, audited_update, history, record
from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.models import User, VirtualMachine
from portal.models import VirtualMachineSpecification as Flavor

FLAVOR_FIELDS = ("name", "cpu", "memory", "storage", "generation", "description", "is_active")
MAX_NAME = 64
MAX_FIGURE = 2_147_483_647
MINIMUM = {"cpu": 1, "memory": 1, "storage": 0, "generation": 1}
AT_LEAST = {"cpu": _l("CPU is at least %(min)s."), "memory": _l("Memory is at least %(min)s."),
            "storage": _l("Storage is at least %(min)s."),
            "generation": _l("Generation is at least %(min)s.")}


class FlavorInvalid(ValueError):
    """The flavor cannot be saved; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _clean(values: Mapping[str, Any], flavor: Flavor | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {
        "name": text.clean(values.get("name")),
        "description": text.clean(values.get("description")),
        "is_active": bool(values.get("is_active", True)),
    }
    name = clean["name"]
    if not name:
        errors["name"] = _("Give the flavor a name.")
    elif hidden := text.name_problem(name, _("The flavor name")):
        errors["name"] = hidden
    elif len(name) > MAX_NAME:
        errors["name"] = _("A flavor name has at most %(max)s characters.", max=MAX_NAME)
    else:
        clash = db.session.scalar(select(Flavor.id).where(Flavor.name == name))
        if clash is not None and (flavor is None or clash != flavor.id):
            errors["name"] = _("A flavor named %(name)s already exists.", name=name)
    if problem := text.too_long(clean["description"], text.MAX_DESCRIPTION):
        errors["description"] = problem
    for field, minimum in MINIMUM.items():
        value = values.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            errors[field] = _("Enter a whole number.")
        elif not minimum <= value <= MAX_FIGURE:
            errors[field] = AT_LEAST[field] % {"min": minimum}
        else:
            clean[field] = value
    if errors:
        raise FlavorInvalid(errors)
    return clean


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FlavorInvalid({"name": _("A flavor with this name already exists.")}) from None


def create_flavor(values: Mapping[str, Any], user: User | None) -> Flavor:
    flavor = audited_create(Flavor(**_clean(values)), "flavor", FLAVOR_FIELDS, user)
    _commit()
    return flavor


def update_flavor(flavor: Flavor, values: Mapping[str, Any], user: User | None) -> dict:
    """Change the catalogue entry only: VMs keep the resources they were placed with."""
    changes = audited_update(flavor, "flavor", FLAVOR_FIELDS, _clean(values, flavor), user)
    if changes:
        _commit()
    return changes


def set_active(flavor: Flavor, active: bool, user: User | None) -> bool:
    """Retire a flavor (it stays for history, cannot be chosen) or offer it again."""
    if flavor.is_active == active:
        return False
    record("retire" if not active else "restore", "flavor", flavor.id, flavor.name,
           {"is_active": {"from": flavor.is_active, "to": active}}, user=user)
    flavor.is_active = active
    db.session.commit()
    return True


def flavor_overview(flavor: Flavor) -> dict:
    """How many VMs were placed with it (live and in total), and its history."""
    live, total = db.session.execute(
        select(
            func.coalesce(func.sum(case((VirtualMachine.status != "deleted", 1), else_=0)), 0),
            func.count(VirtualMachine.id),
        ).where(VirtualMachine.spec_id == flavor.id)
    ).one()
    return {"live_vms": live, "all_vms": total, "events": history("flavor", flavor.id)}


def delete_flavor(flavor: Flavor, user: User | None) -> None:
    """Only a flavor no VM was ever placed with: one with history is retired instead, so
    the VMs' history keeps naming it."""
    from sqlalchemy import func, select

    from portal.audit.service import removed, snapshot
    from portal.models import VirtualMachine

    used = db.session.scalar(select(func.count(VirtualMachine.id))
                             .where(VirtualMachine.spec_id == flavor.id))
    if used:
        raise FlavorInvalid({"name": _n(
            "Flavor %(name)s was used by %(num)s VM: retire it instead (is_active false), so "
            "their history keeps it.",
            "Flavor %(name)s was used by %(num)s VMs: retire it instead (is_active false), so "
            "their history keeps it.", used, name=flavor.name)})
    record("delete", "flavor", flavor.id, flavor.name, removed(snapshot(flavor, FLAVOR_FIELDS)),
           user=user)
    db.session.delete(flavor)
    db.session.commit()
