from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.audit.presenter import detail_url
from portal.auth.access import STAFF, can, get_or_404, requires, roles_of, tenant_ids
from portal.groups import service
from portal.groups.forms import GroupForm
from portal.groups.lists import groups, visible_group_or_404
from portal.i18n import _, _l
from portal.metrics.panels import page_panel
from portal.models import BaremetalGroup
from portal.tenants import quotas
from portal.tenants.forms import GroupQuotaForm
from portal.web import list_page
from portal.web.crud import Crud
from portal.web.forms import options, show_errors

bp = Blueprint("groups", __name__, url_prefix="/groups")
crud = Crud("group", _l("Groups"), "groups", "group_id", service.GroupInvalid,
            new_title=_l("New group"), create_label=_l("Create group"))


@bp.route("/")
@requires("groups")
def list():  # noqa: A001
    return list_page(groups, "groups/list.html")


def _detail_page(group: BaremetalGroup, add_form: GroupQuotaForm, status: int = 200):
    staff = bool(roles_of(current_user) & STAFF)
    detail = service.group_detail(group, tenant_ids(), show_servers=staff)
    add_form.tenant_id.choices = options([(None, _("— tenant —")),
                                          *detail["tenants_without_quota"]])
    return render_template(
        "groups/detail.html", group=group, add_form=add_form, staff=staff,
        editable=can("tenants", "write"), can_edit_group=can("groups", "write"),
        server_url=lambda server_id: detail_url("baremetals.detail", server_id),
        utilisation=page_panel("group", group) if staff else None, **detail,
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
