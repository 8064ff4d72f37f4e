from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.i18n import _l
from portal.scheduler import DEFAULT_STRATEGY
from portal.vms.labels import strategy_choices
from portal.vms.service import MAX_COUNT
from portal.web.forms import LongSelect, form_id, options

# SPEC 8.2: how the nodes of one request share servers; the service checks the value.
ANTI_AFFINITY_CHOICES = options(
    (
        ("soft", _l("Spread across servers (soft)")),
        ("hard", _l("Strictly one per server (hard)")),
        ("none", _l("Pack densely (none)")),
    )
)


class VmForm(FlaskForm):
    """Parses the wizard; the rules (whose tenant, which quota, unique names) are checked
    by portal.vms.service, which the API shares."""

    tenant_id = SelectField(_l("Tenant"), coerce=form_id, validate_choice=False,
                            widget=LongSelect())
    group_id = SelectField(_l("Group"), coerce=form_id, validate_choice=False,
                           description=_l("Only groups where the tenant has quota."))
    spec_id = SelectField(_l("Flavor"), coerce=form_id, validate_choice=False)
    name = StringField(_l("Name"),
                       description=_l("Letters of any script, digits, '.', '-', '_'."))
    count = IntegerField(_l("How many"), default=1,
                         validators=[InputRequired(_l("Say how many VMs.")),
                                     NumberRange(1, MAX_COUNT,
                                                 _l("Ask for 1 to %(max)s VMs.", max=MAX_COUNT))],
                         description=_l("Several identical VMs are placed all or nothing, "
                                        "named name-1, name-2, …"))
    strategy = SelectField(
        _l("Placement strategy"), choices=options(strategy_choices()), default=DEFAULT_STRATEGY,
    )
    anti_affinity = SelectField(
        _l("Spread"), choices=ANTI_AFFINITY_CHOICES, default="soft", validate_choice=False,
        description=_l("How several VMs requested together share servers."),
    )
    regions = SelectMultipleField(_l("Only regions"), validators=[Optional()],
                                  validate_choice=False)
    dcs = SelectMultipleField(_l("Only datacenters"), validators=[Optional()],
                              validate_choice=False)
    racks = SelectMultipleField(_l("Only racks"), validators=[Optional()], validate_choice=False)
    exclude_racks = SelectMultipleField(_l("Never racks"), validators=[Optional()],
                                        validate_choice=False)
