from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField


class GroupForm(FlaskForm):
    name = StringField("Name")
    dimension = StringField("Dimension",
                            description='Why these servers belong together, e.g. "geo:tw-north" '
                                        'or "load:low".')
    description = TextAreaField("Description")
