"""The webhooks pages: list, create, edit, delete, delivery log with resend (SPEC 8.6)."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import administered_tenant_ids, can, requires
from portal.extensions import db
from portal.i18n import _, _l
from portal.models import Tenant, Webhook, WebhookDelivery
from portal.web import list_page
from portal.web.crud import Crud
from portal.web.forms import options
from portal.webhooks import service
from portal.webhooks.forms import WebhookForm
from portal.webhooks.lists import hooks

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
LOG_ROWS = 50
FORM_FIELDS = {"secret": "new_secret", "allow_private": None}


class HookInvalid(ValueError):
    """A refused hook as the form sees it: form field -> message (for portal.web.crud)."""

    def __init__(self, error: service.HookError) -> None:
        super().__init__(str(error))
        self.errors = {FORM_FIELDS.get(error.field, error.field): str(error)}


crud = Crud("hook", _l("Webhooks"), "webhooks", "hook_id", HookInvalid,
            new_title=_l("New webhook"), create_label=_l("Create webhook"))


def _hook_or_404(hook_id: int):
    hook = service.hook_of(current_user, hook_id)
    if hook is None:
        abort(404)
    return hook


@bp.route("/")
@requires("webhooks")
def list():  # noqa: A001
    visible = service.hooks_of(current_user).with_only_columns(Webhook.tenant_id).order_by(None)
    names = dict(db.session.execute(
        select(Tenant.id, Tenant.name).where(Tenant.id.in_(visible))).all())
    return list_page(hooks, "webhooks/list.html", tenant_names=names)


def _tenant_names(hooks) -> dict[int, str]:
    ids = {hook.tenant_id for hook in hooks if hook.tenant_id is not None}
    return dict(db.session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids)))
                .all()) if ids else {}


@bp.route("/<int:hook_id>")
@requires("webhooks")
def detail(hook_id: int, new_secret: str | None = None):
    hook = _hook_or_404(hook_id)
    log = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc()).limit(LOG_ROWS)).all()
    return render_template("webhooks/detail.html", hook=hook, log=log, new_secret=new_secret,
                           tenant_names=_tenant_names([hook]), editable=can("webhooks", "write"))


def _form(hook=None) -> WebhookForm:
    form = WebhookForm(obj=hook)
    tenants = administered_tenant_ids(current_user)
    stmt = select(Tenant.id, Tenant.name).order_by(Tenant.name)
    if tenants is not None:
        stmt = stmt.where(Tenant.id.in_(tenants))
    every = [] if tenants is not None else [(None, _("Every tenant"))]
    form.tenant_id.choices = options(every + [tuple(row) for row in db.session.execute(stmt)])
    if tenants is not None:
        del form.allow_private
    return form


def _save(form: WebhookForm, hook):
    raw_tenant = form.tenant_id.data
    return service.save_hook(
        current_user._get_current_object(), hook, name=form.name.data or "",
        url=form.url.data or "", events=form.events.data or [],
        enabled=bool(form.enabled.data),
        tenant_id=int(raw_tenant) if raw_tenant and str(raw_tenant).isdigit() else None,
        allow_private=bool(form.allow_private and form.allow_private.data),
        secret=form.new_secret.data or None)


def _saved(form: WebhookForm, hook):
    """Save and commit, or HookInvalid (nothing changed)."""
    try:
        saved = _save(form, hook)
    except service.HookError as error:
        raise HookInvalid(error) from None
    db.session.commit()
    return saved


@bp.route("/new", methods=["GET", "POST"])
@requires("webhooks", "write")
def new():
    form = _form()
    return crud.form_page(
        form, None, lambda: _saved(form, None),
        lambda made: _("Webhook %(name)s created. Copy its secret now: it is not shown again.",
                       name=made[0].name or made[0].url),
        # The new hook's secret is shown once, on the page answered here: no redirect.
        answer=lambda made: detail(made[0].id, new_secret=made[1]))


@bp.route("/<int:hook_id>/edit", methods=["GET", "POST"])
@requires("webhooks", "write")
def edit(hook_id: int):
    hook = _hook_or_404(hook_id)
    form = _form(hook)
    return crud.form_page(form, hook, lambda: _saved(form, hook), lambda _hook: _("Webhook saved."))


@bp.route("/<int:hook_id>/delete", methods=["GET", "POST"])
@requires("webhooks", "write")
def delete(hook_id: int):
    hook = _hook_or_404(hook_id)

    def delete_it():
        service.delete_hook(hook, current_user._get_current_object())
        db.session.commit()

    return crud.delete_page(hook, delete_it, _("Webhook deleted, with its delivery log."), "hook")


@bp.route("/deliveries/<int:delivery_id>/resend", methods=["POST"])
@requires("webhooks", "write")
def resend(delivery_id: int):
    delivery = service.delivery_of(current_user, delivery_id)
    if delivery is None:
        abort(404)
    try:
        service.resend(delivery)
    except service.WebhookError as error:
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(_("The delivery goes out again with the controller's next pass."), "success")
    return redirect(url_for("webhooks.detail", hook_id=delivery.webhook_id))
