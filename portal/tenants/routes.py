from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.access import can, get_or_404, requires, tenant_ids
from portal.extensions import db
from portal.groups.service import group_history, group_totals
from portal.i18n import _, _l
from portal.models import BaremetalGroupTenantQuota, Tenant
from portal.tenants import quotas
from portal.tenants import service as tenants_service
from portal.tenants.forms import QuotaForm, TenantForm, TenantQuotaForm
from portal.tenants.lists import stats_for, tenants
from portal.tenants.rows import quota_row
from portal.tenants.service import TenantInvalid, tenant_overview
from portal.web import is_partial, list_page, render
from portal.web.crud import Crud
from portal.web.forms import options, show_errors

bp = Blueprint("tenants", __name__, url_prefix="/tenants")
# The quota tables' display row (templates/tenants/_quotas.html), drawn in Python.
bp.add_app_template_global(quota_row, "quota_row_widget")
crud = Crud("tenant", _l("Tenants"), "tenants", "tenant_id", TenantInvalid,
            new_title=_l("New tenant"), create_label=_l("Create tenant"))


@bp.route("/")
@requires("tenants")
def list():  # noqa: A001
    return list_page(tenants, "tenants/list.html", stats_for=stats_for)


@bp.route("/<int:tenant_id>")
@requires("tenants")
def detail(tenant_id: int):
    tenant = get_or_404(Tenant, tenant_id, Tenant.id)
    return _detail_page(tenant, TenantQuotaForm(prefix="new"))


def _detail_page(tenant: Tenant, add_form: TenantQuotaForm, status: int = 200):
    overview = tenant_overview(tenant)
    add_form.group_id.choices = options(
        [(None, _("— group —")), *overview["groups_without_quota"]]
    )
    return render_template(
        "tenants/detail.html", tenant=tenant, add_form=add_form,
        editable=can("tenants", "write"), **overview,
    ), status


@bp.route("/<int:tenant_id>/quotas", methods=["POST"])
@requires("tenants", "write")
def add_quota(tenant_id: int):
    tenant = get_or_404(Tenant, tenant_id)
    form = TenantQuotaForm(prefix="new")
    if form.validate():
        try:
            change = quotas.create_quota(tenant.id, form.group_id.data, form.values(),
                                         current_user)
        except quotas.QuotaInvalid as invalid:
            show_errors(form, {("group_id" if k == "tenant_id" else k): v
                                for k, v in invalid.errors.items()})
        else:
            _flash_saved(change, "added")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return _detail_page(tenant, form, 422)


# ---- Tenants: create, edit, delete (operators) -------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@requires("tenants", "write")
def new():
    form = TenantForm()
    return crud.form_page(
        form, None, lambda: tenants_service.create_tenant(form.data, current_user),
        lambda tenant: _("Tenant %(name)s created. Give it a quota in a group so that it can "
                         "place VMs.", name=tenant.name))


@bp.route("/<int:tenant_id>/edit", methods=["GET", "POST"])
@requires("tenants", "write")
def edit(tenant_id: int):
    tenant = get_or_404(Tenant, tenant_id)
    form = TenantForm(obj=tenant)
    return crud.form_page(
        form, tenant, lambda: tenants_service.update_tenant(tenant, form.data, current_user),
        lambda tenant: _("Tenant %(name)s saved.", name=tenant.name))


@bp.route("/<int:tenant_id>/delete", methods=["GET", "POST"])
@requires("tenants", "write")
def delete(tenant_id: int):
    tenant = get_or_404(Tenant, tenant_id)
    return crud.delete_page(tenant, lambda: tenants_service.delete_tenant(tenant, current_user),
                            _("Tenant %(name)s deleted.", name=tenant.name), "tenant")


# ---- Quotas: one row, edited in place --------------------------------------------------
# The same row markup serves the group page and the tenant page (?on=group|tenant); each
# HTMX path has a full-page twin for browsers without JavaScript.

def _on() -> str:
    return "tenant" if request.args.get("on") == "tenant" else "group"


def _quota_or_404(quota_id: int) -> BaremetalGroupTenantQuota:
    quota = db_quota(quota_id)
    if quota is None:
        abort(404)
    ids = tenant_ids()
    if ids is not None and quota.tenant_id not in ids:
        abort(404)
    return quota


def db_quota(quota_id: int) -> BaremetalGroupTenantQuota | None:
    return db.session.scalar(
        select(BaremetalGroupTenantQuota)
        .options(
            joinedload(BaremetalGroupTenantQuota.tenant),
            joinedload(BaremetalGroupTenantQuota.group),
            joinedload(BaremetalGroupTenantQuota.updated_by_user),
        )
        .where(BaremetalGroupTenantQuota.id == quota_id)
    )


def _back(quota: BaremetalGroupTenantQuota, on: str) -> str:
    if on == "tenant":
        return url_for("tenants.detail", tenant_id=quota.tenant_id) + f"#quota-{quota.id}"
    return url_for("groups.detail", group_id=quota.group_id) + f"#quota-{quota.id}"


def _row(quota: BaremetalGroupTenantQuota, on: str, form: QuotaForm | None = None,
         status: int = 200):
    """The quota's row (display or form): alone for HTMX, or on the quota's own page."""
    usage = quotas.quota_usages([quota])[0]
    return render(
        "tenants/quota.html", "quota_row", u=usage, on=on, form=form,
        editable=can("tenants", "write"), back=_back(quota, on),
    ), status


@bp.route("/quotas/<int:quota_id>")
@requires("tenants")
def quota_page(quota_id: int):
    """The quota alone: what the Cancel of an in-place edit swaps back in."""
    return _row(_quota_or_404(quota_id), _on())



def _flash_saved(change: quotas.QuotaChange, verb: str = "saved") -> None:
    for message, category in quotas.change_messages(change, verb):
        flash(message, category)


@bp.route("/quotas/<int:quota_id>/edit", methods=["GET", "POST"])
@requires("tenants", "write")
def quota_edit(quota_id: int):
    quota = _quota_or_404(quota_id)
    on = _on()
    form = QuotaForm(obj=quota, prefix=f"q{quota.id}")
    if request.method == "GET":
        return _row(quota, on, form)
    if form.validate():
        try:
            change = quotas.update_quota(quota.id, form.values(), current_user)
        except quotas.QuotaInvalid as invalid:
            show_errors(form, invalid.errors)
        else:
            _flash_saved(change)
            if not is_partial():
                return redirect(_back(quota, on))
            return _saved_row(db_quota(quota.id), on)
    return _row(quota, on, form, 422)


def _saved_row(quota: BaremetalGroupTenantQuota, on: str):
    """The display row, the page's alerts, and (on the group page) the group's totals, the
    last two swapped out of band."""
    row, _status = _row(quota, on)
    parts = [row, render_template("tenants/_flash_oob.html")]
    if on == "group":
        parts.append(render_block("groups/detail.html", "totals", group=quota.group, oob=True,
                                  staff=True, **group_totals(quota.group)))
        parts.append(render_block("groups/detail.html", "history", oob=True,
                                  events=group_history(quota.group)))
    else:
        parts.append(render_block("tenants/detail.html", "history", oob=True,
                                  events=tenants_service.tenant_history(quota.tenant)))
    return make_response("".join(parts))


@bp.route("/quotas/<int:quota_id>/delete", methods=["GET", "POST"])
@requires("tenants", "write")
def quota_delete(quota_id: int):
    quota = _quota_or_404(quota_id)
    on = _on()
    if request.method == "GET":
        return render_template("tenants/quota_delete.html", quota=quota, on=on,
                               usage=quotas.quota_usages([quota])[0], back=_back(quota, on))
    back = (url_for("tenants.detail", tenant_id=quota.tenant_id) if on == "tenant"
            else url_for("groups.detail", group_id=quota.group_id))
    names = {"tenant": quota.tenant.name, "group": quota.group.name}
    try:
        quotas.delete_quota(quota.id, current_user)
    except quotas.QuotaInvalid as invalid:
        flash(invalid.errors["quota"], "error")
    else:
        flash(_("Quota of %(tenant)s in %(group)s deleted: the tenant can no longer place "
                "anything in this group (its existing VMs stay).", **names), "success")
    return redirect(back)
