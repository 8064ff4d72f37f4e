"""Schemathesis against /api/v1/openapi.json, on PostgreSQL, with an operator token: for
every operation, generated requests (bounded examples) get no server error, and every
response — success or problem — conforms to the document (status, content type, schema).
The estate holds one of everything, so generated ids (Hypothesis favours 1) find objects."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from portal.api import api, init_api
from portal.api.openapi import PREFIX
from portal.extensions import db
from tests import factories as f
from tests.api.conftest import build_estate, token_for
from tests.conftest import empty_database

EXAMPLES = 10
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]
tally: Counter = Counter()


def seed() -> str:
    """One of everything, and an operator token whose id is not among the first few (so
    a generated DELETE /tokens/1 does not revoke the token the run uses)."""
    for _ in range(3):
        token_for(f.user())
    estate = build_estate()
    vm = f.vm(estate.tenant_a, estate.servers[0], estate.flavor, status="active")
    cluster = f.cluster(estate.tenant_a, estate.group)
    f.mesh()
    db.session.flush()
    from portal.models import K8sClusterPlugin, ProvisionJob

    db.session.add(K8sClusterPlugin(cluster_id=cluster.id, name="calico", category="network",
                                    version="3.28.1"))
    db.session.add(ProvisionJob(vm_id=vm.id, action="create"))
    from portal.models import ScalingPolicy, VmGroup, VmGroupMember

    group = VmGroup(name="web", tenant_id=estate.tenant_a.id, group_id=estate.group.id,
                    spec_id=estate.flavor.id)
    db.session.add(group)
    db.session.flush()
    db.session.add_all([
        VmGroupMember(vm_group_id=group.id, vm_id=vm.id),
        ScalingPolicy(target_type="vm_group", vm_group_id=group.id, tenant_id=group.tenant_id,
                      min_size=1, max_size=3, metric="cpu_util", target=0.6),
    ])
    db.session.commit()
    return estate.operator


@pytest.fixture(scope="module")
def conformance_app(postgresql_app):
    empty_database(postgresql_app)
    with postgresql_app.app_context():
        token = seed()
        db.session.remove()
    postgresql_app.config["API_TEST_TOKEN"] = token
    with postgresql_app.app_context():
        # "Revoke all my tokens" runs with another operator's token, not the run's.
        postgresql_app.config["API_REVOKE_ALL_TOKEN"] = token_for(f.user(operator=True))
        db.session.remove()
    yield postgresql_app
    operations = len({key[0] for key in tally})
    for mode in ("positive", "negative"):
        by_status = Counter()
        for (_, kind, status), n in tally.items():
            if kind == mode:
                by_status[status] += n
        print(f"\nschemathesis ({mode} data): {operations} operations, "
              f"{sum(by_status.values())} requests, "
              f"{sum(n for s, n in by_status.items() if s >= 500)} server errors; "
              f"by status {dict(sorted(by_status.items()))}")
    empty_database(postgresql_app)


@pytest.fixture(scope="module")
def api_schema(conformance_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", conformance_app)


def _cases() -> list:
    """(method, path, mode) for every operation; invalid data only where an operation takes
    input (an operation without parameters or body has nothing to get wrong)."""
    cases = []
    for op in init_api() and api.operations:
        takes_input = op.query or op.body or op.path_params or op.idempotent
        modes = [("valid", GenerationMode.POSITIVE)]
        if takes_input:
            modes.append(("invalid", GenerationMode.NEGATIVE))
        for name, mode in modes:
            cases.append(pytest.param(op.method, PREFIX + op.path, mode,
                                      id=f"{op.method} {op.path}-{name}"))
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_operation_conforms_to_its_schema(method, path, mode, api_schema,
                                                conformance_app):
    token = conformance_app.config[
        "API_REVOKE_ALL_TOKEN" if path.endswith("/tokens/revoke-all") else "API_TEST_TOKEN"]
    operation = api_schema[path][method]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def conforms(case):
        response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                          checks=CHECKS)
        tally[(f"{method} {path}", mode.value, response.status_code)] += 1

    conforms()
