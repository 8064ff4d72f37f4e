"""Metrics fixtures: the API estate on either database, with a VM, a cluster and their
tenants' tokens, and helpers to count what the store holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import metric_1d, metric_15m, metric_raw
from tests import factories as f
from tests.api.conftest import Api, Estate, build_estate, token_for


@dataclass
class World:
    estate: Estate
    server: Any
    vm: Any
    vm_b: Any  # tenant B's
    cluster: Any
    operator: str
    reader: str  # an operator's read-only token


def build_world() -> World:
    from portal.auth import tokens

    estate = build_estate()
    server = estate.servers[0]
    vm = f.vm(estate.tenant_a, server, estate.flavor)
    vm_b = f.vm(estate.tenant_b, server, estate.flavor)
    cluster = f.cluster(estate.tenant_a, estate.group)
    reader = tokens.issue_token(f.user(operator=True), "read", scopes=["read"]).secret
    db.session.commit()
    return World(estate, server, vm, vm_b, cluster, estate.operator, reader)


@pytest.fixture
def api(any_app) -> Api:
    return Api(any_app.test_client())


@pytest.fixture
def world(any_app) -> World:
    return build_world()


def rows(table=metric_raw) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(table))


def iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


__all__ = ["World", "build_world", "iso", "metric_15m", "metric_1d", "rows", "token_for"]
