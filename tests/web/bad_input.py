"""Helpers for the bad-input tests: a small estate with one of everything, and a snapshot
of every domain table to prove that a refused request changed nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from tests import factories as f

# Sign-in bookkeeping (last login, token use, throttling) may move on any request.
VOLATILE = {"users", "api_token", "login_throttle"}


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    db.session.rollback()
    return {
        table.name: [tuple(row) for row in db.session.execute(
            select(table).order_by(*table.primary_key.columns))]
        for table in db.metadata.sorted_tables if table.name not in VOLATILE
    }


@dataclass
class Estate:
    rack: Any
    group: Any
    server: Any
    tenant: Any
    flavor: Any
    vm: Any
    cluster: Any
    mesh: Any
    maintainer: Any
    maintainer_group: Any
    quota: Any


def estate() -> Estate:
    rack, group, tenant, flavor = f.rack(), f.group(), f.tenant(), f.flavor()
    server = f.server(rack=rack, group=group)
    quota = f.quota(tenant, group)
    result = Estate(
        rack=rack, group=group, server=server, tenant=tenant, flavor=flavor,
        vm=f.vm(tenant, server, flavor, status="active"), cluster=f.cluster(tenant, group),
        mesh=f.mesh(), maintainer=f.maintainer(), maintainer_group=f.maintainer_group(),
        quota=quota,
    )
    db.session.commit()
    return result
