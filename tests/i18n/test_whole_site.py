"""The whole demo site in Traditional Chinese, as each of the three demo logins: every page
reachable by links from the dashboard (one per page shape, sorted and filtered lists
included) leaves no English interface text (data aside). The area tests beside this one
also post bad forms and visit error pages; this one proves nothing was left out between
them — a page added later without translations fails here."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import MaintainerToMaintainerGroup
from portal.seed.demo import LOGINS
from tests.conftest import log_in
from tests.i18n.leaks import crawl, data_strings, english_left

ZH = {"Accept-Language": "zh-TW"}


@pytest.fixture(scope="module")
def demo(sqlite_app):
    from tests.conftest import empty_database

    empty_database(sqlite_app)
    result = sqlite_app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    with sqlite_app.app_context():
        recent_changes(sqlite_app)
    return sqlite_app


def recent_changes(app) -> None:
    """Changes whose audit rows the seed does not write, made through the API in English
    so that they are the newest on /audit/ (and in their objects' history panels): the
    pages must word them in the reader's language, not show what was stored. A cluster
    with a bastion (its nodes, no plugin), deleted again with the bastion; assignments of
    a person with a responsibility and of a group without one, one taken back; a member
    added; a webhook with a secret; a token made and revoked."""
    from portal.models import (
        BaremetalGroupTenantQuota,
        Maintainer,
        MaintainerGroup,
        Tenant,
        User,
        VirtualMachineSpecification,
    )
    from tests.api.conftest import Api, token_for

    ops = db.session.scalar(select(User).where(User.username == "ops-admin"))
    token = token_for(ops)
    api = Api(app.test_client())
    acme = db.session.scalar(select(Tenant).where(Tenant.name == "acme"))
    group_id = db.session.scalar(select(BaremetalGroupTenantQuota.group_id)
                                 .where(BaremetalGroupTenantQuota.tenant_id == acme.id))
    flavor_id = db.session.scalar(
        select(VirtualMachineSpecification.id).where(VirtualMachineSpecification.is_active)
        .order_by(VirtualMachineSpecification.cpu, VirtualMachineSpecification.memory))

    def ok(answer, status=(200, 201, 204)):
        assert answer.status_code in status, answer.get_data(as_text=True)
        return answer.get_json(silent=True) or {}

    cluster = ok(api.post("/clusters", token, {
        "name": "audit-words", "tenant_id": acme.id, "group_id": group_id,
        "version": "1.31.2", "control_planes": 1, "control_plane_flavor_id": flavor_id,
        "workers": 1, "worker_flavor_id": flavor_id, "bastion": "new",
        "bastion_flavor_id": flavor_id}))
    person = db.session.scalar(select(Maintainer).order_by(Maintainer.id))
    team = db.session.scalar(select(MaintainerGroup).order_by(MaintainerGroup.id))
    ok(api.post("/assignments", token, {"resource_type": "k8s_cluster",
                                        "resource_id": cluster["id"],
                                        "maintainer_id": person.id,
                                        "responsibility": "primary on-call"}))
    taken_back = ok(api.post("/assignments", token, {
        "resource_type": "k8s_cluster", "resource_id": cluster["id"],
        "maintainer_group_id": team.id}))
    ok(api.delete(f"/assignments/{taken_back['id']}", token))
    outsider = db.session.scalar(
        select(Maintainer).where(~Maintainer.id.in_(
            select(MaintainerToMaintainerGroup.maintainer_id)
            .where(MaintainerToMaintainerGroup.group_id == team.id))))
    if outsider is not None:
        ok(api.post(f"/maintainer-groups/{team.id}/members", token,
                    {"maintainer_id": outsider.id}))
    ok(api.post("/webhooks", token, {"name": "audit-words", "url": "http://10.0.0.9/hook",
                                     "events": ["vm.status_changed"], "allow_private": True,
                                     "secret": "s3cret-s3cret-s3cret"}))
    made = ok(api.post("/tokens", token, {"name": "audit-words", "scopes": ["read"]}))
    ok(api.delete(f"/tokens/{made['id']}", token))
    ok(api.delete(f"/clusters/{cluster['id']}", token), (200, 202, 204))


@pytest.mark.parametrize("username,password", [(u, p) for u, p, _role in LOGINS])
def test_every_page_a_demo_login_reaches_reads_chinese(demo, username, password):
    with demo.app_context():
        data = data_strings()
        client = demo.test_client()
        assert log_in(client, username, password).status_code == 302
        seen, leaks = 0, {}
        for url, html in crawl(client, "/", limit=250, headers=ZH):
            seen += 1
            assert 'lang="zh-Hant-TW"' in html, url
            left = english_left(html, data)
            if left:
                leaks[url] = sorted(set(left))
        assert leaks == {}, "\n".join(f"{u}: {w}" for u, w in leaks.items())
        assert seen > (40 if username == "ops-admin" else 10), seen
