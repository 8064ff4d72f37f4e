from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired


def _number(label: str, description: str = "") -> IntegerField:
    return IntegerField(label, validators=[InputRequired("Enter a whole number.")],
                        description=description)


class FlavorForm(FlaskForm):
    """Parses the flavor form; the rules live in portal.specs.service."""

    name = StringField("Name", description='e.g. "Standard-4C8G".')
    cpu = _number("CPU (cores)")
    memory = _number("Memory (GiB)")
    storage = _number("Storage (GiB)", "0 for a flavor without local disk.")
    generation = _number("Generation", "Hardware / image generation: 1, 2, 3 …")
    description = TextAreaField("Description")
    is_active = BooleanField("Active (offered in the wizards)", default=True)
