from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange

from portal.i18n import _l
from portal.vm_groups.service import MAX_SIZE
from portal.web.forms import LongSelect, form_id, options

ANTI_AFFINITY_CHOICES = options((
    ("soft", _l("Spread across servers (soft)")),
    ("hard", _l("Strictly one per server (hard)")),
    ("none", _l("Pack densely (none)")),
))


class VmGroupForm(FlaskForm):
    """Parses the form; portal.vm_groups.service checks the rules (shared with the API)."""

    tenant_id = SelectField(_l("Tenant"), coerce=form_id, validate_choice=False,
                            widget=LongSelect())
    group_id = SelectField(_l("Group"), coerce=form_id, validate_choice=False,
                           description=_l("Only groups where the tenant has quota."))
    spec_id = SelectField(_l("Flavor"), coerce=form_id, validate_choice=False)
    name = StringField(_l("Name"), description=_l("Members are named NAME-1, NAME-2, …"))
    size = IntegerField(_l("Members"), default=2,
                        validators=[InputRequired(_l("Say how many members.")),
                                    NumberRange(1, MAX_SIZE)],
                        description=_l("Placed all or none, spread over servers."))
    anti_affinity = SelectField(_l("Spread"), choices=ANTI_AFFINITY_CHOICES, default="soft",
                                validate_choice=False)


class ResizeForm(FlaskForm):
    size = IntegerField(_l("Members"), validators=[InputRequired(_l("Say how many members.")),
                                                   NumberRange(0, MAX_SIZE)])
