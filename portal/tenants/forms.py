
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from portal.i18n import _l
from portal.tenants.quotas import QUOTA_FIELDS
from portal.web.forms import LongSelect, form_id


def _limit(label: str) -> IntegerField:
    return IntegerField(label, validators=[Optional()], render_kw={"inputmode": "numeric"})


class QuotaForm(FlaskForm):
    """Parses the six limit fields; the rules live in portal.tenants.quotas."""

    cpu_limit = _limit(_l("CPU limit (cores)"))
    cpu_percent = _limit(_l("CPU (percent of the group)"))
    memory_limit = _limit(_l("Memory limit (GiB)"))
    memory_percent = _limit(_l("Memory (percent of the group)"))
    storage_limit = _limit(_l("Storage limit (GiB)"))
    storage_percent = _limit(_l("Storage (percent of the group)"))

    def values(self) -> dict[str, int | None]:
        return {name: getattr(self, name).data for name in QUOTA_FIELDS}


class GroupQuotaForm(QuotaForm):
    """A new quota from a group's page: which tenant."""

    tenant_id = SelectField(_l("Tenant"), coerce=form_id, validate_choice=False,
                            widget=LongSelect())


class TenantQuotaForm(QuotaForm):
    """A new quota from a tenant's page: which group."""

    group_id = SelectField(_l("Group"), coerce=form_id, validate_choice=False,
                           widget=LongSelect())


class TenantForm(FlaskForm):
    name = StringField(_l("Name"))
    contact = StringField(_l("Contact"),
                          description=_l("Who to call: a person, a team, an address."))
    description = TextAreaField(_l("Description"))
