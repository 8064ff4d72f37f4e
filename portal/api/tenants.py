"""Tenants and their per-group quotas (with usage: how much is left)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_login import current_user
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.api import api, listing
from portal.api.core import Access
from portal.api.listing import list_query, run
from portal.api.problems import CONFLICT, ApiError
from portal.api.schemas import INT32, Id, Input, Output, Paging, Stamped, page_of
from portal.audit.service import snapshot
from portal.auth.access import get_or_404, tenant_ids
from portal.extensions import db
from portal.models import BaremetalGroupTenantQuota, Tenant
from portal.tenants import lists as tenant_lists
from portal.tenants import quotas, service

TAGS = ("tenants",)
QUOTA_TAGS = ("quotas",)


class TenantOut(Stamped):
    name: str
    description: str
    contact: str


class TenantIn(Input):
    name: str = Field(max_length=service.MAX_NAME)
    description: str = Field("", max_length=10_000)
    contact: str = Field("", max_length=service.MAX_CONTACT)


class TenantChange(Input):
    """Only the fields sent change."""

    name: str | None = Field(None, max_length=service.MAX_NAME)
    description: str | None = Field(None, max_length=10_000)
    contact: str | None = Field(None, max_length=service.MAX_CONTACT)


TenantPage = page_of(TenantOut, "TenantPage")
TenantQuery = list_query("TenantQuery", tenant_lists.tenants)

Limit = Field(None, ge=0, le=quotas.MAX_LIMIT, description="Absolute limit (cores or GiB).")
Percent = Field(None, ge=0, le=100, description="Percentage of the group's total.")


class QuotaDimension(Output):
    written: str = Field(description="The limit as written: '64', '50 %' or 'No limit'.")
    limit: int | None = Field(description="Effective limit; None: unlimited.")
    used: int
    remaining: int | None


class Quota(Stamped):
    tenant_id: int
    group_id: int
    cpu_limit: int | None
    cpu_percent: int | None
    memory_limit: int | None
    memory_percent: int | None
    storage_limit: int | None
    storage_percent: int | None
    updated_by: int | None
    usage: dict[str, QuotaDimension] = Field(description="Per dimension: limit, used, left.")


class QuotaLimits(Input):
    """Per dimension an absolute limit or a percentage of the group's total, never both;
    neither means unlimited in that dimension."""

    cpu_limit: int | None = Limit
    cpu_percent: int | None = Percent
    memory_limit: int | None = Limit
    memory_percent: int | None = Percent
    storage_limit: int | None = Limit
    storage_percent: int | None = Percent


class QuotaIn(QuotaLimits):
    tenant_id: Id
    group_id: Id


class QuotaSaved(Quota):
    warnings: list[str] = Field(description="E.g. a limit now below what the tenant uses: "
                                            "existing VMs stay, new requests fail.")


QuotaPage = page_of(Quota)


class QuotaQuery(Paging):
    tenant_id: int | None = Field(None, ge=1, le=INT32)
    group_id: int | None = Field(None, ge=1, le=INT32)


def quota_out(usages: list[quotas.QuotaUsage]) -> list[Quota]:
    return [
        Quota.model_validate({
            **{name: getattr(u.quota, name) for name in Quota.model_fields if name != "usage"},
            "usage": {d: {"written": x.written, "limit": x.limit, "used": x.used,
                          "remaining": x.remaining} for d, x in u.dimensions.items()},
        })
        for u in usages
    ]


def saved(change: quotas.QuotaChange) -> QuotaSaved:
    (quota,) = quota_out(quotas.quota_usages([change.quota]))
    return QuotaSaved(**quota.model_dump(), warnings=change.warnings)


def _user():
    return current_user._get_current_object()


# --- tenants -------------------------------------------------------------------------------

@api.operation("GET", "/tenants", summary="List tenants", tags=TAGS, access=Access("tenants"),
               query=TenantQuery, response=TenantPage)
def list_tenants(query):
    """Tenant admins see their own tenants only."""
    return run(tenant_lists.tenants, query)


@api.operation("GET", "/tenants/{tenant_id}", summary="Get a tenant", tags=TAGS,
               access=Access("tenants"), response=TenantOut)
def get_tenant(tenant_id: int):
    return get_or_404(Tenant, tenant_id, Tenant.id)


@api.operation("POST", "/tenants", summary="Create a tenant", tags=TAGS,
               access=Access("tenants", "write"), body=TenantIn, response=TenantOut, status=201)
def create_tenant(body: TenantIn):
    tenant = service.create_tenant(body.model_dump(), _user())
    return tenant, {"Location": url_for("api.get_tenant", tenant_id=tenant.id)}


@api.operation("PATCH", "/tenants/{tenant_id}", summary="Update a tenant", tags=TAGS,
               access=Access("tenants", "write"), body=TenantChange, response=TenantOut)
def update_tenant(tenant_id: int, body: TenantChange):
    tenant = get_or_404(Tenant, tenant_id)
    values = {**snapshot(tenant, service.TENANT_FIELDS), **body.model_dump(exclude_none=True)}
    service.update_tenant(tenant, values, _user())
    return tenant


@api.operation("DELETE", "/tenants/{tenant_id}", summary="Delete a tenant", tags=TAGS,
               access=Access("tenants", "write"), status=204, errors=(409,))
def delete_tenant(tenant_id: int):
    """Refused (409) while any VM or cluster, even a deleted one, refers to the tenant."""
    tenant = get_or_404(Tenant, tenant_id)
    try:
        service.delete_tenant(tenant, _user())
    except service.TenantInvalid as refused:
        raise ApiError(CONFLICT, str(refused)) from None


# --- quotas --------------------------------------------------------------------------------

def _visible_quotas():
    stmt = select(BaremetalGroupTenantQuota)
    ids = tenant_ids()
    if ids is not None:
        stmt = stmt.where(BaremetalGroupTenantQuota.tenant_id.in_(ids))
    return stmt


@api.operation("GET", "/quotas", summary="List quotas", tags=QUOTA_TAGS,
               access=Access("tenants"), query=QuotaQuery, response=QuotaPage)
def list_quotas(query: QuotaQuery):
    """Each with its usage. Tenant admins see their own tenants' quotas."""
    stmt = _visible_quotas()
    for name in ("tenant_id", "group_id"):
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(BaremetalGroupTenantQuota, name) == value)
    total = listing.total(stmt)
    rows = db.session.scalars(
        stmt.options(joinedload(BaremetalGroupTenantQuota.group),
                     joinedload(BaremetalGroupTenantQuota.tenant))
        .order_by(BaremetalGroupTenantQuota.id).limit(query.limit).offset(query.offset)
    ).all()
    return {"items": quota_out(quotas.quota_usages(list(rows))), "total": total}


def visible_quota(quota_id: int) -> BaremetalGroupTenantQuota:
    return get_or_404(BaremetalGroupTenantQuota, quota_id, BaremetalGroupTenantQuota.tenant_id)


@api.operation("GET", "/quotas/{quota_id}", summary="Get a quota", tags=QUOTA_TAGS,
               access=Access("tenants"), response=Quota)
def get_quota(quota_id: int):
    (quota,) = quota_out(quotas.quota_usages([visible_quota(quota_id)]))
    return quota


@api.operation("POST", "/quotas", summary="Create a quota", tags=QUOTA_TAGS,
               access=Access("tenants", "write"), body=QuotaIn, response=QuotaSaved,
               status=201)
def create_quota(body: QuotaIn):
    """One quota per tenant and group; without one a tenant cannot place anything there."""
    limits: dict[str, Any] = body.model_dump(exclude={"tenant_id", "group_id"})
    change = quotas.create_quota(body.tenant_id, body.group_id, limits, _user())
    return saved(change), {"Location": url_for("api.get_quota", quota_id=change.quota.id)}


@api.operation("PATCH", "/quotas/{quota_id}", summary="Change a quota", tags=QUOTA_TAGS,
               access=Access("tenants", "write"), body=QuotaLimits, response=QuotaSaved)
def update_quota(quota_id: int, body: QuotaLimits):
    """Only the fields sent change; send null to clear one (to switch a dimension from an
    absolute limit to a percentage, send both). May go below current usage: existing VMs
    stay, new requests fail, and ``warnings`` says so."""
    quota = visible_quota(quota_id)
    values = {**snapshot(quota, quotas.QUOTA_FIELDS), **body.model_dump(exclude_unset=True)}
    db.session.rollback()
    return saved(quotas.update_quota(quota_id, values, _user()))


@api.operation("DELETE", "/quotas/{quota_id}", summary="Delete a quota", tags=QUOTA_TAGS,
               access=Access("tenants", "write"), status=204)
def delete_quota(quota_id: int):
    """The tenant can no longer place anything in that group; existing VMs stay."""
    visible_quota(quota_id)
    db.session.rollback()
    quotas.delete_quota(quota_id, _user())
