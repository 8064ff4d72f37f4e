from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField

from portal.models import WEBHOOK_EVENTS
from portal.web.forms import options


class WebhookForm(FlaskForm):
    """Parses the hook form; the rules (URL checks, who may hook which tenant) live in
    portal.webhooks.service."""

    name = StringField("Name")
    url = StringField("URL", description="http(s). Private, loopback and link-local "
                                         "addresses are refused unless allowed below.")
    events = SelectMultipleField("Events", choices=options((e, e) for e in WEBHOOK_EVENTS),
                                 validate_choice=False)
    tenant_id = SelectField("Tenant", validate_choice=False,
                            description="Only this tenant's events are sent.")
    enabled = BooleanField("Enabled", default=True)
    allow_private = BooleanField("Allow private addresses (operators only)")
    # Not named after the column: an edit form must never be filled with the current secret.
    new_secret = StringField("Secret", description="16 to 255 characters. Leave empty for a "
                                               "random one (new hook) or to keep it (edit).")
