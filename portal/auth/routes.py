from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, logout_user

from portal.auth import service, sessions, tokens
from portal.auth.access import public, signed_in
from portal.auth.forms import LoginForm, PasswordForm, TokenForm
from portal.auth.passwords import MIN_LENGTH
from portal.extensions import db
from portal.i18n import COOKIE, ONE_YEAR, _, _n, locale_tag
from portal.models import utcnow
from portal.web.forms import int_or_none, options, show_errors

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: no scheme, no host, no protocol-relative '//' or '/\\'."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    if target.startswith("//") or target.startswith("/\\") or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        try:
            user = service.log_in(form.username.data, form.password.data, request.remote_addr)
        except service.LoginRefused as refusal:
            db.session.commit()  # the failure counts, and is audited
            flash(str(refusal), "error")
            if refusal.retry_after:
                return render_template("auth/login.html", form=form), 429, {
                    "Retry-After": str(refusal.retry_after)
                }
            return render_template("auth/login.html", form=form), 401
        sessions.start(user, remember=form.remember.data)
        db.session.commit()
        return redirect(safe_next(form.next.data) or url_for("dashboard.index"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@public
def logout():
    """Ends every session of the user, on every device, and its remember-me cookies."""
    if current_user.is_authenticated:
        sessions.end_everywhere(current_user)
        db.session.commit()
    logout_user()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@signed_in
def profile():
    """Every role manages its own API tokens here."""
    form = _with_tenant_choices(TokenForm())
    if form.validate_on_submit():
        try:
            issued = tokens.issue_token(
                current_user, form.name.data, scopes=[form.scope.data],
                expires_at=utcnow() + timedelta(days=form.days.data),
                tenant_id=int_or_none(form.tenant_id.data),
            )
        except tokens.TokenError as error:
            db.session.rollback()
            show_errors(form, {error.field: str(error)})
        else:
            db.session.commit()
            flash(_("Token created. Copy it now: it is not shown again."), "success")
            response = make_response(
                _profile_page(form, PasswordForm(formdata=None), issued.secret))
            # The secret is on this page: no browser or proxy cache may keep a copy.
            response.headers["Cache-Control"] = "no-store"
            return response
    status = 422 if form.errors else 200
    return _profile_page(form, PasswordForm(formdata=None)), status


def _with_tenant_choices(form: TokenForm) -> TokenForm:
    form.tenant_id.choices = options(
        [(None, _("— any of my access —")),
         *((t.id, t.name) for t in tokens.restrictable_tenants(current_user))])
    return form


def _profile_page(token_form: TokenForm, password_form: PasswordForm,
                  new_secret: str | None = None) -> str:
    return render_template(
        "auth/profile.html", form=_with_tenant_choices(token_form), new_secret=new_secret,
        tokens=tokens.tokens_of(current_user), token_state=tokens.state,
        token_expires=tokens.expires,
        max_tokens=tokens.MAX_LIVE_TOKENS, password_form=password_form,
        min_password_length=MIN_LENGTH,
    )


@bp.route("/profile/password", methods=["POST"])
@signed_in
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current.data, form.new.data)
        except service.AccountError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        else:
            sessions.restart_here(current_user._get_current_object())
            db.session.commit()
            flash(_("Password changed. Every other session of yours has ended."), "success")
            return redirect(url_for("auth.profile"))
    return _profile_page(TokenForm(formdata=None), form), 422


@bp.route("/profile/tokens/<int:token_id>/revoke", methods=["POST"])
@signed_in
def revoke_token(token_id: int):
    try:
        token = tokens.revoke_token(current_user, token_id)
    except tokens.TokenError:
        abort(404)
    db.session.commit()
    flash(_("Token %(name)s (%(prefix)s…) revoked.", name=token.name, prefix=token.prefix),
          "success")
    return redirect(url_for("auth.profile"))


@bp.route("/profile/tokens/revoke-all", methods=["POST"])
@signed_in
def revoke_all_tokens():
    revoked = tokens.revoke_all(current_user)
    db.session.commit()
    flash(_n("%(num)s token revoked: none of your tokens works any more.",
             "%(num)s tokens revoked: none of your tokens works any more.", revoked), "success")
    return redirect(url_for("auth.profile"))


@bp.route("/healthz")
@public
def healthz():
    return {"status": "ok"}



@bp.route("/language", methods=["POST"])
@public
def language():
    """The language switch: a cookie for everyone, and the profile of a signed-in user, so
    that the choice follows them to another browser."""
    tag = locale_tag(request.form.get("locale"))
    back = safe_next(request.form.get("next")) or url_for("dashboard.index")
    if tag is None:
        abort(400, description=_("Choose one of the offered languages."))
    if current_user.is_authenticated:
        current_user.locale = tag
        db.session.commit()
    response = redirect(back)
    response.set_cookie(COOKIE, tag, max_age=ONE_YEAR, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response
