"""Every API list's ``total`` is the real number of rows it pages over, not 1 (a COUNT
that lost its FROM counts a single row), with and without a filter."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    BaremetalGroupTenantQuota,
    MaintainerGroup,
    ProvisionJob,
    ResourceMaintainer,
)
from tests import factories as f


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def rows(estate):
    """More than one row of each list, more than one page of two."""
    for _ in range(3):
        f.quota(f.tenant(), estate.group)
    groups = [f.maintainer_group() for _ in range(4)]
    people = [f.maintainer() for _ in range(2)]
    for group in groups:
        db.session.add(ResourceMaintainer(resource_type="tenant", resource_id=estate.tenant_a.id,
                                          maintainer_group_id=group.id))
    for person in people:
        db.session.add(ResourceMaintainer(resource_type="rack",
                                          resource_id=estate.servers[0].rack_id,
                                          maintainer_id=person.id))
    for i in range(5):
        vm = f.vm(estate.tenant_a, estate.servers[0], estate.flavor, name=f"job-vm-{i}")
        db.session.add(ProvisionJob(vm_id=vm.id, action="create"))
    db.session.commit()
    return estate


@pytest.mark.parametrize(("path", "model"), [
    ("/quotas", BaremetalGroupTenantQuota),
    ("/assignments", ResourceMaintainer),
    ("/maintainer-groups", MaintainerGroup),
    ("/provision-jobs", ProvisionJob),
])
def test_list_total_is_the_real_count(api, rows, path, model):
    expected = count(model)
    assert expected > 2
    body = api.get(f"{path}?limit=2", rows.operator).get_json()
    assert len(body["items"]) == 2
    assert body["total"] == expected
    rest = api.get(f"{path}?limit=100&offset=2", rows.operator).get_json()
    assert len(rest["items"]) == expected - 2 and rest["total"] == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/quotas?group_id={group}", 5),  # tenants A and B, and the three made here
    ("/assignments?resource_type=tenant", 4),
    ("/maintainer-groups?q=team", 4),
    ("/provision-jobs?status=queued", 5),
])
def test_filtered_list_total_counts_the_filtered_rows(api, rows, path, expected):
    body = api.get(path.format(group=rows.group.id) + "&limit=1", rows.operator).get_json()
    assert len(body["items"]) == 1 and body["total"] == expected


def test_tenant_admin_totals_count_only_their_rows(api, rows):
    body = api.get("/quotas", rows.admin_a).get_json()
    assert body["total"] == len(body["items"]) == 1
    body = api.get("/assignments?limit=1", rows.admin_a).get_json()
    assert len(body["items"]) == 1 and body["total"] == 4  # the groups on tenant A
