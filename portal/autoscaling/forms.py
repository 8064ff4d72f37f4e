from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField
from wtforms.validators import Optional

from portal.i18n import _l
from portal.web.forms import LongSelect, options

MODE_CHOICES = options((
    ("dry_run", _l("Dry run: record decisions, change nothing")),
    ("active", _l("Active: act on decisions")),
    ("off", _l("Off: no evaluation")),
))
METRIC_CHOICES = options((
    ("cpu_util", _l("CPU utilisation (share of the flavor, 0–1)")),
    ("memory_used_gib", _l("Memory used (GiB per member)")),
    ("storage_used_gib", _l("Storage used (GiB per member)")),
    ("pods_pending", _l("Unschedulable pods (clusters: cluster-autoscaler)")),
))


class PolicyForm(FlaskForm):
    """Parses the form; portal.autoscaling.service checks the rules (shared with the API)."""

    target_ref = SelectField(_l("Scale"), validate_choice=False, widget=LongSelect(),
                             description=_l("A VM group, or a cluster's worker pool."))
    min = IntegerField(_l("Minimum"), validators=[Optional()])
    max = IntegerField(_l("Maximum"), validators=[Optional()])
    metric = SelectField(_l("Metric"), choices=METRIC_CHOICES, validate_choice=False)
    target = FloatField(_l("Target value"), validators=[Optional()],
                        description=_l("The members' average to keep (cpu_util 0.6 is "
                                       "60 percent)."))
    tolerance = FloatField(_l("Tolerance"), default=0.1, validators=[Optional()],
                           description=_l("No change while the average is this close to the "
                                          "target (0.1: within 10 percent)."))
    scale_down_stabilization_seconds = IntegerField(
        _l("Scale-down stabilisation (s)"), default=300, validators=[Optional()],
        description=_l("Scale down only to the highest size recommended in this window."))
    warmup_seconds = IntegerField(
        _l("Warm-up (s)"), default=300, validators=[Optional()],
        description=_l("New members are left out of the average this long."))
    mode = SelectField(_l("Mode"), choices=MODE_CHOICES, default="dry_run",
                       validate_choice=False)
