from flask import Blueprint, render_template
from sqlalchemy import select

from portal.auth.access import get_or_404, requires, scoped
from portal.models import Tenant
from portal.tenants.service import tenant_overview
from portal.web import list_page
from portal.web.listing import Column, Listing

bp = Blueprint("tenants", __name__, url_prefix="/tenants")

tenants = Listing(
    name="tenants",
    statement=lambda: scoped(select(Tenant), Tenant.id),
    columns=[
        Column("name", "Name", Tenant.name),
        Column("contact", "Contact", Tenant.contact),
        Column("description", "Description", Tenant.description),
    ],
    search=[Tenant.name, Tenant.contact, Tenant.description],
)


@bp.route("/")
@requires("tenants")
def list():  # noqa: A001
    return list_page(tenants, "tenants/list.html")


@bp.route("/<int:tenant_id>")
@requires("tenants")
def detail(tenant_id: int):
    tenant = get_or_404(Tenant, tenant_id, Tenant.id)
    return render_template("tenants/detail.html", tenant=tenant, **tenant_overview(tenant))
