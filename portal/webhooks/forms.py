from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField

from portal.i18n import _l
from portal.models import WEBHOOK_EVENTS
from portal.web.forms import options


class WebhookForm(FlaskForm):
    """Parses the hook form; the rules (URL checks, who may hook which tenant) live in
    portal.webhooks.service. Event names are codes (vm.created …) and stay as they are."""

    name = StringField(_l("Name"))
    url = StringField(_l("URL"), description=_l("http(s). Private, loopback and link-local "
                                                "addresses are refused unless allowed below."))
    events = SelectMultipleField(_l("Events"), choices=options((e, e) for e in WEBHOOK_EVENTS),
                                 validate_choice=False)
    tenant_id = SelectField(_l("Tenant"), validate_choice=False,
                            description=_l("Only this tenant's events are sent."))
    enabled = BooleanField(_l("Enabled"), default=True)
    allow_private = BooleanField(_l("Allow private addresses (operators only)"))
    # Not named after the column: an edit form must never be filled with the current secret.
    new_secret = StringField(_l("Secret"), description=_l(
        "16 to 255 characters. Leave empty for a random one (new hook) or to keep it (edit)."))
