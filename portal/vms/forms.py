from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.scheduler import DEFAULT_STRATEGY, STRATEGIES
from portal.vms.service import MAX_COUNT
from portal.web.forms import form_id, options

# SPEC 8.2: how the nodes of one request share servers; the service checks the value.
ANTI_AFFINITY_CHOICES = options(
    (
        ("soft", "Spread across servers (soft)"),
        ("hard", "Strictly one per server (hard)"),
        ("none", "Pack densely (none)"),
    )
)


class VmForm(FlaskForm):
    """Parses the wizard; the rules (whose tenant, which quota, unique names) are checked
    by portal.vms.service, which the API shares."""

    tenant_id = SelectField("Tenant", coerce=form_id, validate_choice=False)
    group_id = SelectField("Group", coerce=form_id, validate_choice=False,
                           description="Only groups where the tenant has quota.")
    spec_id = SelectField("Flavor", coerce=form_id, validate_choice=False)
    name = StringField("Name", description="Letters of any script, digits, '.', '-', '_'.")
    count = IntegerField("How many", default=1,
                         validators=[InputRequired("Say how many VMs."),
                                     NumberRange(1, MAX_COUNT, f"Ask for 1 to {MAX_COUNT} VMs.")],
                         description="Several identical VMs are placed all or nothing, "
                                     "named name-1, name-2, …")
    strategy = SelectField(
        "Placement strategy",
        choices=options((name, name.replace("_", " ")) for name in sorted(STRATEGIES)),
        default=DEFAULT_STRATEGY,
    )
    anti_affinity = SelectField(
        "Spread", choices=ANTI_AFFINITY_CHOICES, default="soft", validate_choice=False,
        description="How several VMs requested together share servers.",
    )
    regions = SelectMultipleField("Only regions", validators=[Optional()], validate_choice=False)
    dcs = SelectMultipleField("Only datacenters", validators=[Optional()], validate_choice=False)
    racks = SelectMultipleField("Only racks", validators=[Optional()], validate_choice=False)
    exclude_racks = SelectMultipleField("Never racks", validators=[Optional()],
                                        validate_choice=False)
