from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portal.audit.service import history
from portal.auth.access import can, requires, signed_in, tenant_ids
from portal.auth.routes import safe_next
from portal.extensions import db
from portal.i18n import _, _l
from portal.maintainers import service
from portal.maintainers.forms import GroupForm, MaintainerForm
from portal.maintainers.lists import groups as group_list
from portal.maintainers.lists import maintainers
from portal.models import (
    MAINTAINER_STATUSES,
    BaremetalGroupTenantQuota,
    Maintainer,
    MaintainerGroup,
)
from portal.vms.labels import LABELS
from portal.web import list_page, render
from portal.web.crud import Crud
from portal.web.forms import int_or_none
from portal.web.forms import options as choices

bp = Blueprint("maintainers", __name__, url_prefix="/maintainers")
crud = Crud("person", _l("Maintainers"), "maintainers", "maintainer_id", service.MaintainerError,
            new_title=_l("New maintainer"), create_label=_l("Save"), refuse_on_page=True)


class GroupCrud(Crud):
    """Maintainer groups live under the maintainers blueprint: their own list and page."""

    def list_url(self) -> str:
        return url_for("maintainers.groups")

    def url(self, obj) -> str:
        if obj is None:
            return self.list_url()
        return url_for("maintainers.group_detail", group_id=obj.id)

    def render(self, page: str, obj, **context) -> str:
        return render_template(f"maintainers/group_{page}", crud=self, obj=obj, group=obj,
                               **context)


group_crud = GroupCrud("group", _l("Maintainer groups"), "maintainers", "group_id",
                       service.MaintainerError, new_title=_l("New maintainer group"),
                       create_label=_l("Save"))

@bp.route("/")
@requires("maintainers")
def list():  # noqa: A001
    return list_page(maintainers, "maintainers/list.html")


@bp.route("/my-assignments")
@requires("assignments")
def my_assignments():
    grouped = service.assignments_of(current_user.maintainer)
    return render_template(
        "maintainers/my_assignments.html",
        grouped=grouped,
        labels=service.RESOURCE_LABELS,
        endpoints=service.RESOURCE_ENDPOINTS,
    )


# --- maintainers ---------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:maintainer_id>/edit", methods=["GET", "POST"])
@requires("maintainers", "write")
def edit(maintainer_id: int | None = None):
    person = db.get_or_404(Maintainer, maintainer_id) if maintainer_id else None
    form = MaintainerForm(obj=person)
    form.status.choices = choices((s, LABELS["switched"][s]) for s in MAINTAINER_STATUSES)
    if request.method == "GET" and person is not None and person.user is not None:
        form.username.data = person.user.username
    return crud.form_page(
        form, person,
        lambda: service.save_maintainer(
            person, user=current_user, name=form.name.data, account=form.account.data,
            email=form.email.data, phone=form.phone.data, status=form.status.data,
            username=form.username.data,
        ),
        lambda saved: _("Maintainer %(name)s saved.", name=saved.name),
    )


@bp.route("/<int:maintainer_id>")
@requires("maintainers")
def detail(maintainer_id: int):
    person = db.get_or_404(Maintainer, maintainer_id)
    return render_template(
        "maintainers/detail.html",
        person=person,
        grouped=service.assignments_of(person),
        labels=service.RESOURCE_LABELS,
        endpoints=service.RESOURCE_ENDPOINTS,
        managed=service.managed_groups(person),
        events=history("maintainer", person.id),
    )


@bp.route("/<int:maintainer_id>/delete", methods=["GET", "POST"])
@requires("maintainers", "write")
def delete(maintainer_id: int):
    person = db.get_or_404(Maintainer, maintainer_id)
    return crud.delete_page(
        person,
        lambda: service.delete_maintainer(
            person, user=current_user,
            leave_groups_without_manager=request.form.get("confirm_groups") == "yes"),
        _("Maintainer %(name)s deleted, with their memberships and assignments.",
          name=person.name),
        None, managed=service.managed_groups(person))


@bp.route("/search")
@requires("maintainers")
def search():
    """Search-as-you-type for people and groups (assignment and membership forms)."""
    people, groups = service.search_assignees(request.args.get("q", ""))
    return render_template(
        "maintainers/_search_results.html",
        people=people,
        groups=groups if request.args.get("groups", "1") == "1" else [],
        field=request.args.get("field", "assignee"),
    )


# --- groups --------------------------------------------------------------------------------


@bp.route("/groups/")
@requires("maintainers")
def groups():
    return list_page(group_list, "maintainers/groups.html")


def _manager_choices():
    people = db.session.execute(
        select(Maintainer.id, Maintainer.name, Maintainer.account).order_by(Maintainer.name)
    ).all()
    return choices([(None, _("— no manager —")),
                    *((p.id, f"{p.name} ({p.account})") for p in people)])


@bp.route("/groups/new", methods=["GET", "POST"])
@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
@requires("maintainers", "write")
def group_edit(group_id: int | None = None):
    group = db.get_or_404(MaintainerGroup, group_id) if group_id else None
    form = GroupForm(obj=group)
    form.manager_id.choices = _manager_choices()
    return group_crud.form_page(
        form, group,
        lambda: service.save_group(group, user=current_user, name=form.name.data,
                                   description=form.description.data,
                                   manager_id=form.manager_id.data),
        lambda saved: _("Group %(name)s saved.", name=saved.name),
    )


@bp.route("/groups/<int:group_id>")
@requires("maintainers")
def group_detail(group_id: int):
    group = db.get_or_404(MaintainerGroup, group_id)
    return render(
        "maintainers/group_detail.html",
        "members",
        group=group,
        members=service.group_members(group),
        events=history("maintainer_group", group.id),
    )


@bp.route("/groups/<int:group_id>/members", methods=["POST"])
@requires("maintainers", "write")
def group_members(group_id: int):
    """Add (op=add) or remove (op=remove) a member, in place with HTMX."""
    group = db.get_or_404(MaintainerGroup, group_id)
    raw = (
        request.form.get("maintainer_id")
        or request.form.get("maintainer_ref", "").partition(":")[2]
    )
    maintainer_id = int_or_none(raw)
    if maintainer_id is None and request.form.get("q"):  # without JavaScript: exact search
        people, _ = service.search_assignees(request.form["q"])
        maintainer_id = people[0].id if len(people) == 1 else None
    status, error = 200, None
    try:
        if request.form.get("op") == "remove":
            service.remove_member(group, maintainer_id, user=current_user)
        else:
            service.add_member(group, maintainer_id, user=current_user)
    except service.MaintainerError as refused:
        db.session.rollback()
        status, error = 422, str(refused)
    if error and not request.headers.get("HX-Request"):
        flash(error, "error")
    if not request.headers.get("HX-Request"):
        return redirect(url_for("maintainers.group_detail", group_id=group.id))
    return render(
        "maintainers/group_detail.html",
        "members",
        group=group,
        members=service.group_members(group),
        error=error,
    ), status


@bp.route("/groups/<int:group_id>/delete", methods=["GET", "POST"])
@requires("maintainers", "write")
def group_delete(group_id: int):
    group = db.get_or_404(MaintainerGroup, group_id)
    return group_crud.delete_page(
        group, lambda: service.delete_group(group, user=current_user),
        _("Group %(name)s deleted, with its memberships and assignments.", name=group.name),
        "group")


# --- the Maintainers panel of every resource page ------------------------------------------


def visible_resource(resource_type: str, resource_id: int):
    """The resource, if the current user may see it; 404 otherwise (another tenant's)."""
    try:
        resource = service.resource_or_error(resource_type, resource_id)
    except service.MaintainerError:
        abort(404)
    ids = tenant_ids()
    if ids is None:
        return resource
    if resource_type == "tenant" and resource.id in ids:
        return resource
    if resource_type in ("virtual_machine", "k8s_cluster") and resource.tenant_id in ids:
        return resource
    if (
        resource_type == "baremetal_group"
        and db.session.scalar(
            select(BaremetalGroupTenantQuota.id).where(
                BaremetalGroupTenantQuota.group_id == resource.id,
                BaremetalGroupTenantQuota.tenant_id.in_(ids),
            )
        )
        is not None
    ):
        return resource
    abort(404)


def panel_response(resource_type, resource, error=None, status=200):
    panel = service.panel_for(resource_type, resource, can("maintainers", "write"))
    return render_template("maintainers/_panel_fragment.html", panel=panel, error=error), status


@bp.route("/panel/<resource_type>/<int:resource_id>", methods=["GET", "POST"])
@signed_in
def panel(resource_type: str, resource_id: int):
    """GET: the panel alone. POST (operators): assign (op=assign) or remove (op=remove)."""
    resource = visible_resource(resource_type, resource_id)
    if request.method == "GET":
        return panel_response(resource_type, resource)
    if not can("maintainers", "write"):
        abort(403)
    error = None
    try:
        if request.form.get("op") == "remove":
            service.unassign(
                int_or_none(request.form.get("assignment_id")) or 0,
                user=current_user,
                resource_type=resource_type,
                resource_id=resource.id,
            )
        else:
            kind, _, raw_id = (request.form.get("assignee") or "").partition(":")
            assignee = int_or_none(raw_id)
            if not kind:  # no choice made (e.g. without JavaScript): an unambiguous search
                people, groups = service.search_assignees(request.form.get("q", ""))
                if len(people) + len(groups) == 1:
                    kind, assignee = ("person", people[0].id) if people else ("group", groups[0].id)
            service.assign(
                resource_type,
                resource.id,
                user=current_user,
                maintainer_id=assignee if kind == "person" else None,
                group_id=assignee if kind == "group" else None,
                responsibility=request.form.get("responsibility", ""),
            )
    except service.MaintainerError as refused:
        db.session.rollback()
        error = str(refused)
    if not request.headers.get("HX-Request"):
        if error:
            flash(error, "error")
        return redirect(safe_next(request.form.get("next")) or url_for("dashboard.index"))
    return panel_response(resource_type, resource, error, 422 if error else 200)


@bp.app_context_processor
def _panel_context() -> dict:
    """Resource pages include templates/maintainers/_panel.html with
    maintainer_panel(type, resource)."""
    return {
        "maintainer_panel": lambda resource_type, resource: service.panel_for(
            resource_type, resource, can("maintainers", "write")
        ),
        # Links to resource pages only where the page exists.
        "view_functions": current_app.view_functions,
    }
