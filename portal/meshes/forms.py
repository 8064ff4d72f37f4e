from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField

from portal.i18n import _l
from portal.models import MESH_STATUSES, MESH_TYPES
from portal.vms.labels import LABELS
from portal.web.forms import options


class MeshForm(FlaskForm):
    """Parses the mesh form; the rules live in portal.meshes.service."""

    name = StringField(_l("Name"))
    mesh_type = SelectField(_l("Type"),
                            choices=options((t, LABELS["mesh_type"][t]) for t in MESH_TYPES),
                            validate_choice=False)
    version = StringField(_l("Version"), description=_l('e.g. "1.23.2".'))
    status = SelectField(_l("Status"),
                         choices=options((s, LABELS["switched"][s]) for s in MESH_STATUSES),
                         validate_choice=False)
    description = TextAreaField(_l("Description"))
