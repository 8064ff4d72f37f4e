from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.clusters.service import CONTROL_PLANE_COUNTS, MAX_WORKERS
from portal.scheduler import DEFAULT_STRATEGY, STRATEGIES
from portal.vms.forms import ANTI_AFFINITY_CHOICES
from portal.web.forms import form_id, int_or_none, options


class ClusterForm(FlaskForm):
    """Parses the cluster wizard; the rules live in portal.clusters.service. Plugins come
    as checkboxes named `plugins` with a `version_<name>` field each (see the template)."""

    tenant_id = SelectField("Tenant", coerce=form_id, validate_choice=False)
    group_id = SelectField(
        "Group",
        coerce=form_id,
        validate_choice=False,
        description="Only groups where the tenant has quota.",
    )
    name = StringField(
        "Cluster name", description="Nodes are named <name>-cp-1, <name>-worker-1, …"
    )
    version = SelectField("Kubernetes version", validate_choice=False)
    control_planes = SelectField(
        "Control planes",
        coerce=int_or_none,
        default=3,
        validate_choice=False,
        choices=options((n, f"{n} {'(HA)' if n > 1 else '(no HA)'}") for n in CONTROL_PLANE_COUNTS),
    )
    control_plane_flavor_id = SelectField(
        "Control-plane flavor", coerce=form_id, validate_choice=False
    )
    workers = IntegerField(
        "Workers",
        default=3,
        validators=[
            InputRequired("Say how many workers (0 is fine)."),
            NumberRange(0, MAX_WORKERS, f"Ask for 0 to {MAX_WORKERS} workers."),
        ],
    )
    worker_flavor_id = SelectField("Worker flavor", coerce=form_id, validate_choice=False)
    primary_mesh_id = SelectField("Primary service mesh", coerce=form_id, validate_choice=False)
    secondary_mesh_id = SelectField(
        "Secondary service mesh", coerce=form_id, validate_choice=False
    )
    bastion = RadioField(
        "Bastion",
        default="none",
        validate_choice=False,
        choices=options(
            [
                ("none", "None"),
                ("existing", "An existing VM of the tenant"),
                ("new", "A new bastion VM, placed with the cluster"),
            ]
        ),
    )
    bastion_vm_id = SelectField("Existing VM", coerce=form_id, validate_choice=False)
    bastion_flavor_id = SelectField(
        "New bastion's flavor", coerce=form_id, validate_choice=False
    )
    anti_affinity = SelectField(
        "Spread", choices=ANTI_AFFINITY_CHOICES, default="soft", validate_choice=False,
        description="How the workers (and a new bastion) share servers; control planes "
        "always take distinct servers.",
    )
    strategy = SelectField(
        "Placement strategy",
        default=DEFAULT_STRATEGY,
        choices=options((n, n.replace("_", " ")) for n in sorted(STRATEGIES)),
    )
    description = TextAreaField("Description", validators=[Optional()])
