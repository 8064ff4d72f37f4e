"""The webhook list: what the page runs."""

from __future__ import annotations

from flask_login import current_user

from portal.i18n import _, _l
from portal.models import Webhook
from portal.web.listing import Column, Filter, Listing
from portal.webhooks import service

hooks = Listing(
    name="webhooks",
    statement=lambda: service.hooks_of(current_user).order_by(None),
    columns=[
        Column("name", _l("Name"), Webhook.name),
        Column("url", _l("URL"), Webhook.url),
        Column("events", _l("Events"), value=lambda hook: " ".join(hook.events)),
        Column("tenant_id", _l("Tenant"), Webhook.tenant_id),
        Column("enabled", _l("Enabled"), Webhook.enabled),
    ],
    search=[Webhook.name, Webhook.url],
    filters=[
        Filter("enabled", _l("Enabled"), lambda s, v: s.where(Webhook.enabled.is_(v == "yes")),
               lambda: [("yes", _("yes")), ("no", _("no"))]),
    ],
)
