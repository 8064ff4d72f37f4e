from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField

from portal.models import MESH_STATUSES, MESH_TYPES
from portal.web.forms import options


class MeshForm(FlaskForm):
    """Parses the mesh form; the rules live in portal.meshes.service."""

    name = StringField("Name")
    mesh_type = SelectField("Type", choices=options((t, t) for t in MESH_TYPES),
                            validate_choice=False)
    version = StringField("Version", description='e.g. "1.23.2".')
    status = SelectField("Status", choices=options((s, s) for s in MESH_STATUSES),
                         validate_choice=False)
    description = TextAreaField("Description")
