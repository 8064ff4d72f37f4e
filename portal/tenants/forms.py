
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from portal.tenants.quotas import QUOTA_FIELDS
from portal.web.forms import form_id


def _limit(label: str) -> IntegerField:
    return IntegerField(label, validators=[Optional()], render_kw={"inputmode": "numeric"})


class QuotaForm(FlaskForm):
    """Parses the six limit fields; the rules live in portal.tenants.quotas."""

    cpu_limit = _limit("CPU limit (cores)")
    cpu_percent = _limit("CPU % of group")
    memory_limit = _limit("Memory limit (GiB)")
    memory_percent = _limit("Memory % of group")
    storage_limit = _limit("Storage limit (GiB)")
    storage_percent = _limit("Storage % of group")

    def values(self) -> dict[str, int | None]:
        return {name: getattr(self, name).data for name in QUOTA_FIELDS}


class GroupQuotaForm(QuotaForm):
    """A new quota from a group's page: which tenant."""

    tenant_id = SelectField("Tenant", coerce=form_id, validate_choice=False)


class TenantQuotaForm(QuotaForm):
    """A new quota from a tenant's page: which group."""

    group_id = SelectField("Group", coerce=form_id, validate_choice=False)


class TenantForm(FlaskForm):
    name = StringField("Name")
    contact = StringField("Contact", description="Who to call: a person, a team, an address.")
    description = TextAreaField("Description")
