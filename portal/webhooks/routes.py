"""The webhooks pages: list, create, edit, delete, delivery log with resend (SPEC 8.6)."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import administered_tenant_ids, can, requires
from portal.extensions import db
from portal.models import Tenant, Webhook, WebhookDelivery
from portal.web import list_page
from portal.web.forms import options, show_errors
from portal.web.listing import Column, Filter, Listing
from portal.webhooks import service
from portal.webhooks.forms import WebhookForm

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
LOG_ROWS = 50
FORM_FIELDS = {"secret": "new_secret", "allow_private": None}


def _hook_or_404(hook_id: int):
    hook = service.hook_of(current_user, hook_id)
    if hook is None:
        abort(404)
    return hook


hooks = Listing(
    name="webhooks",
    statement=lambda: service.hooks_of(current_user).order_by(None),
    columns=[
        Column("name", "Name", Webhook.name),
        Column("url", "URL", Webhook.url),
        Column("events", "Events", value=lambda hook: " ".join(hook.events)),
        Column("tenant_id", "Tenant", Webhook.tenant_id),
        Column("enabled", "Enabled", Webhook.enabled),
    ],
    search=[Webhook.name, Webhook.url],
    filters=[
        Filter("enabled", "Enabled", lambda s, v: s.where(Webhook.enabled.is_(v == "yes")),
               lambda: [("yes", "yes"), ("no", "no")]),
    ],
)


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
    every = [] if tenants is not None else [(None, "Every tenant")]
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


def _form_page(form, hook):
    return render_template("webhooks/form.html", form=form, hook=hook), (
        422 if form.errors or form.form_errors else 200)


@bp.route("/new", methods=["GET", "POST"])
@requires("webhooks", "write")
def new():
    form = _form()
    if form.validate_on_submit():
        try:
            hook, secret = _save(form, None)
        except service.HookError as error:
            db.session.rollback()
            show_errors(form, {FORM_FIELDS.get(error.field, error.field): str(error)})
        else:
            db.session.commit()
            flash(f"Webhook {hook.name or hook.url} created. Copy its secret now: it is not "
                  "shown again.", "success")
            return detail(hook.id, new_secret=secret)
    return _form_page(form, None)


@bp.route("/<int:hook_id>/edit", methods=["GET", "POST"])
@requires("webhooks", "write")
def edit(hook_id: int):
    hook = _hook_or_404(hook_id)
    form = _form(hook)
    if form.validate_on_submit():
        try:
            _, secret = _save(form, hook)
        except service.HookError as error:
            db.session.rollback()
            show_errors(form, {FORM_FIELDS.get(error.field, error.field): str(error)})
        else:
            db.session.commit()
            flash("Webhook saved.", "success")
            return redirect(url_for("webhooks.detail", hook_id=hook_id))
    return _form_page(form, hook)


@bp.route("/<int:hook_id>/delete", methods=["GET", "POST"])
@requires("webhooks", "write")
def delete(hook_id: int):
    hook = _hook_or_404(hook_id)
    if request.method == "POST":
        service.delete_hook(hook, current_user._get_current_object())
        db.session.commit()
        flash("Webhook deleted, with its delivery log.", "success")
        return redirect(url_for("webhooks.list"))
    return render_template("webhooks/confirm_delete.html", hook=hook)


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
        flash("The delivery goes out again with the controller's next pass.", "success")
    return redirect(url_for("webhooks.detail", hook_id=delivery.webhook_id))
