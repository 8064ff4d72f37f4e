from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired

from portal.i18n import _l


def _number(label, description="") -> IntegerField:
    return IntegerField(label, validators=[InputRequired(_l("Enter a whole number."))],
                        description=description)


class FlavorForm(FlaskForm):
    """Parses the flavor form; the rules live in portal.specs.service."""

    name = StringField(_l("Name"), description=_l('e.g. "%(example)s".', example="Standard-4C8G"))
    cpu = _number(_l("CPU (cores)"))
    memory = _number(_l("Memory (GiB)"))
    storage = _number(_l("Storage (GiB)"), _l("0 for a flavor without local disk."))
    generation = _number(_l("Generation"), _l("Hardware / image generation: 1, 2, 3 …"))
    description = TextAreaField(_l("Description"))
    is_active = BooleanField(_l("Active (offered in the wizards)"), default=True)
