from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.i18n import _l
from portal.web.forms import form_id

TOO_LONG = _l("At most %(max)d characters.")


class MaintainerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the name.")),
                                               Length(max=128, message=TOO_LONG)])
    account = StringField(_l("Account"), validators=[DataRequired(_l("Give the account.")),
                                                     Length(max=64, message=TOO_LONG)],
                          description=_l("Login-style handle, e.g. mlchen."))
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=255, message=TOO_LONG)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=64, message=TOO_LONG)])
    status = SelectField(_l("Status"), validate_choice=False)
    username = StringField(_l("Portal login"),
                           validators=[Optional(), Length(max=64, message=TOO_LONG)],
                           description=_l("Link to a login account, so that My assignments "
                                          "works."))


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the group a name.")),
                                               Length(max=128, message=TOO_LONG)])
    description = TextAreaField(_l("Description"), validators=[Optional()])
    manager_id = SelectField(_l("Manager"), coerce=form_id, validate_choice=False,
                             description=_l("The manager is always a member."))
