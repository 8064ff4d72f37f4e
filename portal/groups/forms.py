from flask_babel import LazyString
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField, TextAreaField

from portal.i18n import _, _l


class GroupForm(FlaskForm):
    name = StringField(_l("Name"))
    dimension = StringField(_l("Dimension"), description=LazyString(lambda: Markup(_(
        "Why these servers belong together, e.g. <code>%(geo)s</code> or "
        "<code>%(load)s</code>.", geo="geo:tw-north", load="load:low"))))
    description = TextAreaField(_l("Description"))
