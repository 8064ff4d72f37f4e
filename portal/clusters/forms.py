from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.clusters.service import CONTROL_PLANE_COUNTS, MAX_WORKERS
from portal.i18n import _l
from portal.scheduler import DEFAULT_STRATEGY
from portal.vms.forms import ANTI_AFFINITY_CHOICES
from portal.vms.labels import strategy_choices
from portal.web.forms import LongSelect, form_id, int_or_none, options


class ClusterForm(FlaskForm):
    """Parses the cluster wizard; the rules live in portal.clusters.service. Plugins come
    as checkboxes named `plugins` with a `version_<name>` field each (see the template)."""

    tenant_id = SelectField(_l("Tenant"), coerce=form_id, validate_choice=False,
                            widget=LongSelect())
    group_id = SelectField(
        _l("Group"),
        coerce=form_id,
        validate_choice=False,
        description=_l("Only groups where the tenant has quota."),
    )
    name = StringField(
        _l("Cluster name"), description=_l("Nodes are named <name>-cp-1, <name>-worker-1, …")
    )
    version = SelectField(_l("Kubernetes version"), validate_choice=False)
    control_planes = SelectField(
        _l("Control planes"),
        coerce=int_or_none,
        default=3,
        validate_choice=False,
        choices=options(
            (n, _l("%(n)s (HA)", n=n) if n > 1 else _l("%(n)s (no HA)", n=n))
            for n in CONTROL_PLANE_COUNTS
        ),
    )
    control_plane_flavor_id = SelectField(
        _l("Control-plane flavor"), coerce=form_id, validate_choice=False
    )
    workers = IntegerField(
        _l("Workers"),
        default=3,
        validators=[
            InputRequired(_l("Say how many workers (0 is fine).")),
            NumberRange(0, MAX_WORKERS, _l("Ask for 0 to %(max)s workers.", max=MAX_WORKERS)),
        ],
    )
    worker_flavor_id = SelectField(_l("Worker flavor"), coerce=form_id, validate_choice=False)
    primary_mesh_id = SelectField(_l("Primary service mesh"), coerce=form_id,
                                  validate_choice=False)
    secondary_mesh_id = SelectField(
        _l("Secondary service mesh"), coerce=form_id, validate_choice=False
    )
    bastion = RadioField(
        _l("Bastion"),
        default="none",
        validate_choice=False,
        choices=options(
            [
                ("none", _l("None")),
                ("existing", _l("An existing VM of the tenant")),
                ("new", _l("A new bastion VM, placed with the cluster")),
            ]
        ),
    )
    bastion_vm_id = SelectField(_l("Existing VM"), coerce=form_id, validate_choice=False,
                                widget=LongSelect())
    bastion_flavor_id = SelectField(
        _l("New bastion's flavor"), coerce=form_id, validate_choice=False
    )
    anti_affinity = SelectField(
        _l("Spread"), choices=ANTI_AFFINITY_CHOICES, default="soft", validate_choice=False,
        description=_l("How the workers (and a new bastion) share servers; control planes "
                       "always take distinct servers."),
    )
    strategy = SelectField(
        _l("Placement strategy"),
        default=DEFAULT_STRATEGY,
        choices=options(strategy_choices()),
    )
    description = TextAreaField(_l("Description"), validators=[Optional()])
