from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange

from portal.i18n import _l


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    remember = BooleanField(_l("Keep me logged in"))
    next = HiddenField()


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=64)])
    scope = SelectField(_l("Access"), default="write", choices=[
        SelectChoice("read", _l("read: look only (GET)")),
        SelectChoice("write", _l("write: change what my role allows")),
        SelectChoice("admin", _l("admin: write, and create and revoke tokens")),
    ])
    days = IntegerField(_l("Expires in (days)"), default=90, validators=[NumberRange(1, 365)])
    # Choices: the tenants the user may restrict a token to (set by the view).
    tenant_id = SelectField(_l("Only for tenant"), default="", coerce=str)


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=256)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))],
    )
