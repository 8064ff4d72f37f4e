"""Bulk actions on list pages, NetBox-style: tick rows (or "all N matching this view"),
choose an action, confirm on a page that lists the rows and says what will happen, then
read a per-row result.

Each row is acted on by the area's own service function in its own transaction, so one
refusal never undoes the others. A list offers bulk actions by one BulkList entry in
``LISTS`` (its listing, its model and the actions); the routes, the confirmation and the
result pages are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth.access import administered_tenant_ids, can, signed_in
from portal.extensions import db
from portal.i18n import _, _l
from portal.web.forms import int_or_none
from portal.web.guard import MAX_ID

MAX_ROWS = 1000  # per request: a selection or "all matching"

bp = Blueprint("bulk", __name__, url_prefix="/bulk")


class Refused(ValueError):
    """One row the action cannot be carried out on; the message says why."""


class ParamsInvalid(ValueError):
    """The action's parameters (chosen on the confirmation page) are not usable."""


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    rule: tuple[str, str]  # portal.auth.access RULES area and action
    # parameters from the confirmation form -> values the apply function takes
    params: Callable[[Mapping[str, str]], dict[str, Any]]
    # what will happen, for the confirmation page, from the parameters (None: not chosen)
    summary: Callable[[dict[str, Any] | None, str], str]
    # act on one row in its own transaction; returns what was done, raises Refused
    apply: Callable[[Any, dict[str, Any], Any], str]
    fields: str | None = None  # template of the parameter fields, under templates/bulk/
    scope: Callable[[Any], Any] | None = None  # which rows may be acted on (a WHERE)
    danger: bool = False

    def allowed(self) -> bool:
        return can(*self.rule)


@dataclass(frozen=True)
class BulkList:
    name: str
    title: str  # the list page's title
    noun: str
    plural: str
    model: Any
    listing: Callable[[], Any]  # the list page's Listing (imported late: no import cycles)
    list_endpoint: str
    detail: Callable[[Any], str]  # a row's page
    actions: Sequence[Action] = field(default_factory=tuple)

    def allowed_actions(self) -> list[Action]:
        return [a for a in self.actions if a.allowed()]

    def action(self, name: str) -> Action:
        found = next((a for a in self.actions if a.name == name), None)
        if found is None:
            abort(400, description=_("Unknown bulk action %(action)s for %(things)s.",
                                     action=repr(name), things=self.plural))
        if not found.allowed():
            abort(403)
        return found


# --- the actions ------------------------------------------------------------------------------


def _status_params(form: Mapping[str, str]) -> dict[str, Any]:
    from portal.models import BAREMETAL_STATUSES
    from portal.web.labels import status_label

    status = (form.get("status") or "").strip()
    if status not in BAREMETAL_STATUSES:
        raise ParamsInvalid(_("Choose the new status: one of %(statuses)s.",
                              statuses=", ".join(status_label(s) for s in BAREMETAL_STATUSES)))
    return {"status": status}


def _set_server_status(server: Any, params: dict[str, Any], user: Any) -> str:
    from portal.baremetals import service
    from portal.web.labels import status_label

    if server.status == params["status"]:
        raise Refused(_("Server %(name)s is already %(status)s.", name=server.name,
                        status=status_label(server.status)))
    before = server.status
    try:
        service.change_status(server, params["status"])
    except service.ServerInvalid as invalid:
        raise Refused(" ".join(invalid.errors.values())) from None
    return f"{status_label(before)} → {status_label(server.status)}"


def _assignee_params(form: Mapping[str, str]) -> dict[str, Any]:
    from portal.models import Maintainer, MaintainerGroup

    kind, _colon, raw = (form.get("assignee") or "").partition(":")
    assignee_id = int_or_none(raw)
    model = {"person": Maintainer, "group": MaintainerGroup}.get(kind)
    assignee = db.session.get(model, assignee_id) if model and assignee_id else None
    if assignee is None:
        raise ParamsInvalid(_("Choose a maintainer or a maintainer group to assign."))
    responsibility = (form.get("responsibility") or "").strip()
    if len(responsibility) > 255:
        raise ParamsInvalid(_("A responsibility has at most 255 characters."))
    who = assignee.name if kind == "person" else _("group %(name)s", name=assignee.name)
    return {
        "maintainer_id": assignee.id if kind == "person" else None,
        "group_id": assignee.id if kind == "group" else None,
        "responsibility": responsibility,
        "who": who,
    }


def _assigner(resource_type: str) -> Callable[[Any, dict[str, Any], Any], str]:
    def assign(row: Any, params: dict[str, Any], user: Any) -> str:
        from portal.maintainers import service

        try:
            service.assign(
                resource_type, row.id, user=user, maintainer_id=params["maintainer_id"],
                group_id=params["group_id"], responsibility=params["responsibility"],
            )
        except service.MaintainerError as error:
            raise Refused(str(error)) from None
        return _("%(who)s assigned", who=params["who"])

    return assign


def _assign_summary(params: dict[str, Any] | None, plural: str) -> str:
    if params is None:
        return _("The maintainer or group you choose is assigned to each of these %(things)s, "
                 "with the responsibility you give; a row that already has them is refused.",
                 things=plural)
    if params["responsibility"]:
        return _("%(who)s is assigned to each of these %(things)s as %(responsibility)s.",
                 who=params["who"], things=plural, responsibility=params["responsibility"])
    return _("%(who)s is assigned to each of these %(things)s.", who=params["who"],
             things=plural)


def _delete_vm(vm: Any, params: dict[str, Any], user: Any) -> str:
    from portal.provisioning.jobs import JobError
    from portal.vms import service

    try:
        service.delete_vm(vm, user)
    except JobError as error:
        raise Refused(str(error)) from None
    db.session.refresh(vm)
    return (_("deleted") if vm.status == "deleted"
            else _("being deleted: resources are released once the agent confirms"))


def _administered_vms(model: Any) -> Any:
    """Tenant admins delete only their own tenants' VMs (a maintainer role reads more)."""
    allowed = administered_tenant_ids()
    return None if allowed is None else model.tenant_id.in_(allowed)


def _no_params(form: Mapping[str, str]) -> dict[str, Any]:
    return {}


def _status_summary(params: dict[str, Any] | None, plural: str) -> str:
    from portal.web.labels import status_label

    if params:
        return _("Each of these %(things)s is set to %(status)s; a server whose VMs forbid it "
                 "is refused.", things=plural, status=status_label(params["status"]))
    return _("Each of these %(things)s is set to the status you choose; a server whose VMs "
             "forbid it is refused.", things=plural)


def _assign_action(resource_type: str) -> Action:
    return Action(
        "assign", _l("Assign maintainer"), ("maintainers", "write"), _assignee_params,
        _assign_summary, _assigner(resource_type), fields="_assignee_fields.html",
    )


def _servers():
    from portal.baremetals.routes import baremetals

    return baremetals


def _racks():
    from portal.racks.routes import racks

    return racks


def _vms():
    from portal.vms.lists import vm_page  # the page's view: deleted VMs unless asked

    return vm_page


def _lists() -> dict[str, BulkList]:
    from portal.models import Baremetal, Rack, VirtualMachine

    return {
        bulk.name: bulk
        for bulk in (
            BulkList(
                "servers", _l("Servers"), _l("server"), _l("servers"), Baremetal, _servers,
                "baremetals.list",
                lambda row: url_for("baremetals.detail", server_id=row.id),
                actions=(
                    Action(
                        "status", _l("Set status"), ("baremetals", "write"), _status_params,
                        _status_summary,
                        _set_server_status, fields="_status_fields.html",
                    ),
                    _assign_action("baremetal"),
                ),
            ),
            BulkList(
                "racks", _l("Racks"), _l("rack"), _l("racks"), Rack, _racks, "racks.list",
                lambda row: url_for("racks.detail", rack_id=row.id),
                actions=(_assign_action("rack"),),
            ),
            BulkList(
                "vms", _l("Virtual machines"), _l("VM"), _l("VMs"), VirtualMachine, _vms,
                "vms.list",
                lambda row: url_for("vms.detail", vm_id=row.id),
                actions=(
                    Action(
                        "delete", _l("Delete"), ("vms", "delete"), _no_params,
                        lambda p, plural: _(
                            "Each of these %(things)s is deleted through the agent; its "
                            "resources return to the quota as the agent confirms. Cluster "
                            "nodes are refused: scale or delete their cluster instead.",
                            things=plural),
                        _delete_vm, scope=_administered_vms, danger=True,
                    ),
                ),
            ),
        )
    }


LISTS: dict[str, BulkList] = {}


def bulk_list(name: str) -> BulkList:
    if not LISTS:
        LISTS.update(_lists())
    found = LISTS.get(name)
    if found is None:
        abort(404)
    return found


def bulk_for(name: str) -> BulkList | None:
    """The list's bulk actions this user may take (templates), or None: no checkboxes."""
    bulk = bulk_list(name)
    return bulk if bulk.allowed_actions() else None


# --- the selection ------------------------------------------------------------------------------


def selected_ids(form: Any) -> list[int]:
    """The ticked rows' ids, in order, without repeats; bad ids refuse the whole request."""
    raw = form.getlist("id")
    if len(raw) > MAX_ROWS:
        abort(400, description=_("Bulk actions take at most %(max)s rows at a time; "
                                 "%(count)s were selected.", max=format(MAX_ROWS, ","),
                                 count=format(len(raw), ",")))
    ids: dict[int, None] = {}  # ordered, without repeats
    for value in raw:
        number = int_or_none(value)
        if number is None:
            abort(400, description=_("%(value)s is no row id: ids are whole numbers from 1 "
                                     "to %(max)s.", value=repr(str(value)[:40]), max=MAX_ID))
        ids[number] = None
    return list(ids)


def _matching_ids(bulk: BulkList, args: Any) -> list[int]:
    """Every row of the list's current view (its filters and search, not only one page)."""
    prepared = bulk.listing().prepare(args)
    stmt = prepared[0]
    total = db.session.scalar(bulk.listing().count_statement(prepared[-1])) or 0
    if total > MAX_ROWS:
        abort(400, description=_("%(count)s %(things)s match this view; bulk actions take at "
                                 "most %(max)s at a time: narrow the filters first.",
                                 count=format(total, ","), things=bulk.plural,
                                 max=format(MAX_ROWS, ",")))
    # The view's order, so the confirmation lists the rows as the page did.
    return list(db.session.scalars(
        stmt.with_only_columns(bulk.model.id, maintain_column_froms=True)
    ))


def _rows(bulk: BulkList, action: Action, ids: list[int]) -> tuple[list[Any], list[int]]:
    """The rows the user may act on, in the order chosen, and the ids that name none
    (another tenant's object is not found, as everywhere)."""
    stmt = bulk.listing().statement().where(bulk.model.id.in_(ids)).order_by(None)
    condition = action.scope(bulk.model) if action.scope else None
    if condition is not None:
        stmt = stmt.where(condition)
    found = {row.id: row for row in db.session.scalars(stmt).unique()}
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


# --- the pages ----------------------------------------------------------------------------------


def _back(bulk: BulkList) -> str:
    """The list page as it was: the filters travel in the query string."""
    return url_for(bulk.list_endpoint, **request.args)


def _confirmation(bulk: BulkList, action: Action, ids: list[int], params=None, error=None,
                  code=200):
    from portal.models import BAREMETAL_STATUSES
    from portal.web.options import maintainer_choices, maintainer_group_choices

    rows, missing = _rows(bulk, action, ids)
    return render_template(
        "bulk/confirm.html", bulk=bulk, action=action, rows=rows, missing=missing,
        ids=[row.id for row in rows] + missing, params=params or {}, error=error,
        summary=action.summary(None, bulk.plural), back=_back(bulk),
        statuses=BAREMETAL_STATUSES, maintainer_choices=maintainer_choices,
        maintainer_group_choices=maintainer_group_choices,
    ), code


@bp.route("/<list_name>", methods=["POST"])
@signed_in  # each list's and action's own rule is checked by BulkList.action
def confirm(list_name: str):
    """From a list page: the rows ticked (or all matching its view) and an action, to
    confirm. Changes nothing."""
    bulk = bulk_list(list_name)
    action = bulk.action(request.form.get("action", ""))
    if request.form.get("select_all") == "all":
        ids = _matching_ids(bulk, request.args)
    else:
        ids = selected_ids(request.form)
    if not ids:
        flash(_("Select the %(things)s to act on first.", things=bulk.plural), "error")
        return redirect(_back(bulk))
    return _confirmation(bulk, action, ids)


@bp.route("/<list_name>/<action_name>", methods=["POST"])
@signed_in
def run(list_name: str, action_name: str):
    """Carry the action out row by row; each row commits or rolls back on its own."""
    bulk = bulk_list(list_name)
    action = bulk.action(action_name)
    ids = selected_ids(request.form)
    if not ids:
        flash(_("Select the %(things)s to act on first.", things=bulk.plural), "error")
        return redirect(_back(bulk))
    try:
        params = action.params(request.form)
    except ParamsInvalid as invalid:
        return _confirmation(bulk, action, ids, params=request.form, error=str(invalid),
                             code=422)
    rows, missing = _rows(bulk, action, ids)
    results = []
    for row in rows:
        try:
            done = action.apply(row, params, current_user)
        except Refused as refused:
            db.session.rollback()
            results.append((row, "refused", str(refused)))
        else:
            results.append((row, "done", done))
    results += [(row_id, "not found", _("No %(thing)s %(id)s you may act on.",
                                        thing=bulk.noun, id=row_id))
                for row_id in missing]
    done = sum(1 for _row, outcome, _message in results if outcome == "done")
    return render_template(
        "bulk/result.html", bulk=bulk, action=action, results=results, done=done,
        summary=action.summary(params, bulk.plural), back=_back(bulk),
    )


def init_bulk(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_global(bulk_for)
    from portal.web.listing import option_tags

    app.add_template_global(option_tags)
