from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.audit.presenter import detail_url
from portal.auth.access import STAFF, can, get_or_404, requires, roles_of, tenant_ids
from portal.extensions import db
from portal.groups import service
from portal.groups.forms import GroupForm
from portal.i18n import _, _l
from portal.models import BaremetalGroup, BaremetalGroupTenantQuota
from portal.tenants import quotas
from portal.tenants.forms import GroupQuotaForm
from portal.web import list_page
from portal.web.crud import Crud
from portal.web.forms import options, show_errors
from portal.web.listing import Column, Filter, Listing

bp = Blueprint("groups", __name__, url_prefix="/groups")
crud = Crud("group", _l("Groups"), "groups", "group_id", service.GroupInvalid,
            new_title=_l("New group"), create_label=_l("Create group"))


def _quota_groups():
    """Groups the current user's tenants hold quota in; None: every group."""
    ids = tenant_ids()
    if ids is None:
        return None
    return select(BaremetalGroupTenantQuota.group_id).where(
        BaremetalGroupTenantQuota.tenant_id.in_(ids)
    )


def _visible_groups():
    """Tenant admins see only the groups their tenants hold quota in."""
    stmt = select(BaremetalGroup)
    held = _quota_groups()
    if held is not None:
        stmt = stmt.where(BaremetalGroup.id.in_(held))
    return stmt


def _allocated(d: str):
    return getattr(BaremetalGroup, f"total_{d}") - getattr(BaremetalGroup, f"available_{d}")


groups = Listing(
    name="groups",
    statement=_visible_groups,
    columns=[
        Column("name", "Name", BaremetalGroup.name),
        Column("dimension", "Dimension", BaremetalGroup.dimension),
        Column("total_cpu", "CPU", BaremetalGroup.total_cpu, numeric=True),
        Column("allocated_cpu", "Allocated CPU", _allocated("cpu"), numeric=True,
               value=lambda g: g.total_cpu - g.available_cpu),
        Column("available_cpu", "Free CPU", BaremetalGroup.available_cpu, numeric=True),
        Column("total_memory", "Memory (GiB)", BaremetalGroup.total_memory, numeric=True),
        Column("allocated_memory", "Allocated memory (GiB)", _allocated("memory"), numeric=True,
               value=lambda g: g.total_memory - g.available_memory),
        Column("available_memory", "Free memory (GiB)", BaremetalGroup.available_memory,
               numeric=True),
        Column("total_storage", "Storage (GiB)", BaremetalGroup.total_storage, numeric=True),
        Column("allocated_storage", "Allocated storage (GiB)", _allocated("storage"),
               numeric=True, value=lambda g: g.total_storage - g.available_storage),
        Column("available_storage", "Free storage (GiB)", BaremetalGroup.available_storage,
               numeric=True),
        Column("description", "Description", BaremetalGroup.description),
    ],
    search=[BaremetalGroup.name, BaremetalGroup.dimension, BaremetalGroup.description],
    filters=[
        Filter("dimension", "Dimension", lambda s, v: s.where(BaremetalGroup.dimension == v),
               lambda: _dimensions()),
    ],
)


def _dimensions() -> list[tuple[str, str]]:
    """The dimension labels of the groups the user may see."""
    rows = db.session.scalars(
        _visible_groups().with_only_columns(BaremetalGroup.dimension).distinct()
        .order_by(BaremetalGroup.dimension)
    )
    return [(d, d) for d in rows if d]


@bp.route("/")
@requires("groups")
def list():  # noqa: A001
    return list_page(groups, "groups/list.html")


def visible_group_or_404(group_id: int) -> BaremetalGroup:
    """The group, or 404 for a tenant admin whose tenants hold no quota in it."""
    group = get_or_404(BaremetalGroup, group_id)
    held = _quota_groups()
    if held is not None and db.session.scalar(
        held.where(BaremetalGroupTenantQuota.group_id == group.id).limit(1)
    ) is None:
        abort(404)
    return group


def _detail_page(group: BaremetalGroup, add_form: GroupQuotaForm, status: int = 200):
    staff = bool(roles_of(current_user) & STAFF)
    detail = service.group_detail(group, tenant_ids(), show_servers=staff)
    add_form.tenant_id.choices = options([(None, "— tenant —"), *detail["tenants_without_quota"]])
    return render_template(
        "groups/detail.html", group=group, add_form=add_form, staff=staff,
        editable=can("tenants", "write"), can_edit_group=can("groups", "write"),
        server_url=lambda server_id: detail_url("baremetals.detail", server_id), **detail,
    ), status


@bp.route("/<int:group_id>")
@requires("groups")
def detail(group_id: int):
    return _detail_page(visible_group_or_404(group_id), GroupQuotaForm(prefix="new"))


@bp.route("/<int:group_id>/quotas", methods=["POST"])
@requires("tenants", "write")
def add_quota(group_id: int):
    group = get_or_404(BaremetalGroup, group_id)
    form = GroupQuotaForm(prefix="new")
    if form.validate():
        try:
            change = quotas.create_quota(form.tenant_id.data, group.id, form.values(),
                                         current_user)
        except quotas.QuotaInvalid as invalid:
            show_errors(form, invalid.errors)
        else:
            for message, category in quotas.change_messages(change, "added"):
                flash(message, category)
            return redirect(url_for("groups.detail", group_id=group.id))
    return _detail_page(group, form, 422)


@bp.route("/new", methods=["GET", "POST"])
@requires("groups", "write")
def new():
    form = GroupForm()
    return crud.form_page(
        form, None, lambda: service.create_group(form.data, current_user),
        lambda group: _("Group %(name)s created. Add servers to it from their pages, and give "
                        "tenants a quota here.", name=group.name))


@bp.route("/<int:group_id>/edit", methods=["GET", "POST"])
@requires("groups", "write")
def edit(group_id: int):
    group = get_or_404(BaremetalGroup, group_id)
    form = GroupForm(obj=group)
    return crud.form_page(form, group, lambda: service.update_group(group, form.data, current_user),
                          lambda group: _("Group %(name)s saved.", name=group.name))


@bp.route("/<int:group_id>/delete", methods=["GET", "POST"])
@requires("groups", "write")
def delete(group_id: int):
    group = get_or_404(BaremetalGroup, group_id)
    return crud.delete_page(group, lambda: service.delete_group(group, current_user),
                            _("Group %(name)s deleted, with its quotas.", name=group.name),
                            "group")
