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


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me logged in")
    next = HiddenField()


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=64)])
    scope = SelectField("Access", default="write", choices=[
        SelectChoice("read", "read: look only (GET)"),
        SelectChoice("write", "write: change what my role allows"),
        SelectChoice("admin", "admin: write, and create and revoke tokens"),
    ])
    days = IntegerField("Expires in (days)", default=90, validators=[NumberRange(1, 365)])
    # Choices: the tenants the user may restrict a token to (set by the view).
    tenant_id = SelectField("Only for tenant", default="", coerce=str)


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("new", message="The two new passwords differ.")],
    )
