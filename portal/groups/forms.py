from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from portal.i18n import _l


class GroupForm(FlaskForm):
    name = StringField(_l("Name"))
    dimension = StringField(_l("Dimension"), description=_l(
        'Why these servers belong together, e.g. "%(geo)s" or "%(load)s".',
        geo="geo:tw-north", load="load:low"))
    description = TextAreaField(_l("Description"))
