from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.web.forms import form_id


class MaintainerForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=128)])
    account = StringField("Account", validators=[DataRequired(), Length(max=64)],
                          description="Login-style handle, e.g. mlchen.")
    email = EmailField("Email", validators=[Optional(), Length(max=255)])
    phone = StringField("Phone", validators=[Optional(), Length(max=64)])
    status = SelectField("Status", validate_choice=False)
    username = StringField("Portal login", validators=[Optional(), Length(max=64)],
                           description="Link to a login account, so that My assignments works.")


class GroupForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=128)])
    description = TextAreaField("Description", validators=[Optional()])
    manager_id = SelectField("Manager", coerce=form_id, validate_choice=False,
                             description="The manager is always a member.")
