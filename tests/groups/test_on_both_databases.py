"""The grouped queries and the quota edit behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.groups.service import headroom
from portal.models import BaremetalGroupTenantQuota
from portal.tenants import quotas
from portal.tenants.service import tenant_stats
from tests import factories as f


def test_headroom_tenant_totals_and_quota_edit(any_app):
    grp = f.group()
    srv = f.server(group=grp, cpu=26, memory=96, storage=164)
    f.server(group=grp, cpu=64, memory=16, storage=1000)
    tenant = f.tenant()
    quota = f.quota(tenant, grp, cpu_limit=40)
    f.vm(tenant, srv, f.flavor(cpu=16, memory=32, storage=64, is_active=False))
    f.vm(tenant, srv, f.flavor(cpu=1, memory=1, storage=0, is_active=False), status="deleted")
    f.flavor(name="s.4", cpu=4, memory=8, storage=20)
    f.flavor(name="d.2", cpu=2, memory=4, storage=0)
    user = f.user("ops", operator=True)
    db.session.commit()

    assert {h.name: h.fits for h in headroom(grp)} == {"d.2": 9, "s.4": 4}
    assert tenant_stats([tenant.id]) == {
        tenant.id: {"vms": 1, "clusters": 0, "cpu": 16, "memory": 32}}

    change = quotas.update_quota(quota.id, {"cpu_limit": 8}, user)
    assert change.changes == {"cpu_limit": {"from": 40, "to": 8}}
    assert "already uses 16 CPU" in change.warnings[0]
    with pytest.raises(quotas.QuotaInvalid) as refused:
        quotas.update_quota(quota.id, {"cpu_limit": 8, "cpu_percent": 5}, user)
    assert set(refused.value.errors) == {"cpu_limit"}
    db.session.expire_all()
    assert db.session.get(BaremetalGroupTenantQuota, quota.id).cpu_limit == 8
