"""Bad input at the door (SPEC §7: a clear error, nothing changed): NUL characters, ids no
database integer holds, oversized requests, odd filter and date values. Each of these was
a 500 on PostgreSQL."""

from __future__ import annotations

import io

import pytest

from portal.audit.service import record
from portal.extensions import db
from tests import factories as f
from tests.api.conftest import token_for
from tests.baremetals.pages import client_for, post, text
from tests.conftest import csrf_token_from, log_in
from tests.web.bad_input import estate, snapshot

BIG = 2**31  # one past the largest PostgreSQL integer

NUL_GETS = [
    "/racks/?q=%00", "/servers/?q=%00", "/groups/?q=%00", "/tenants/?q=%00",
    "/flavors/?q=%00", "/vms/?q=%00", "/clusters/?q=%00", "/meshes/?q=%00",
    "/maintainers/?q=%00", "/maintainers/groups/?q=%00", "/audit/?q=%00", "/search/?q=%00",
    "/maintainers/search?q=%00", "/vms/?tenant=1%00", "/servers/?region=%00&format=csv",
    "/audit/?from=%00", "/racks/{rack}?tab=%00", "/vms/new?tenant_id=%00",
    "/?a%00b=1",
]
NUL_POSTS = [
    ("/racks/new", {"name": "r\x00", "region": "r1", "dc": "dc1", "height_u": "42"}),
    ("/racks/{rack}/edit", {"name": "renamed", "region": "r1", "dc": "dc1", "height_u": "42",
                            "network_notes": "a\x00b"}),
    ("/servers/new", {"name": "s\x00", "serial": "SN-x", "total_cpu": "1",
                      "total_memory": "1", "total_storage": "1"}),
    ("/servers/{server}/status", {"status": "maintenance\x00"}),
    ("/groups/new", {"name": "g\x00"}),
    ("/groups/{group}/edit", {"name": "g2", "description": "\x00"}),
    ("/tenants/new", {"name": "t\x00"}),
    ("/tenants/{tenant}/edit", {"name": "t2", "contact": "x\x00"}),
    ("/flavors/new", {"name": "fl\x00", "cpu": "1", "memory": "1", "storage": "1",
                      "generation": "1"}),
    ("/meshes/new", {"name": "m\x00", "mesh_type": "istio", "version": "1"}),
    ("/maintainers/new", {"name": "n\x00", "account": "acc"}),
    ("/maintainers/groups/new", {"name": "mg\x00"}),
    ("/maintainers/panel/rack/{rack}", {"op": "assign", "q": "\x00"}),
    ("/vms/new", {"tenant_id": "{tenant}", "group_id": "{group}", "spec_id": "{flavor}",
                  "name": "vm\x00", "count": "1"}),
    ("/vms/preview", {"name": "\x00"}),
    ("/clusters/new", {"name": "c\x00"}),
    ("/clusters/{cluster}/actions", {"op": "add_plugin", "name": "calico\x00"}),
    ("/servers/import", {"text": "name,serial\nsrv\x00,SN1\n"}),
    ("/profile", {"name": "token\x00"}),
]


@pytest.fixture
def pg_ops(pg_app):
    objects = estate()
    ids = {name: getattr(objects, name).id for name in ("rack", "server", "group", "tenant",
                                                          "flavor", "cluster")}
    return client_for(pg_app, "ops", operator=True), ids


@pytest.mark.parametrize("url", NUL_GETS)
def test_a_nul_in_the_query_string_is_a_400_on_postgresql(pg_ops, url):
    client, ids = pg_ops
    response = client.get(url.format(**ids))
    assert response.status_code == 400
    assert "contains a NUL character" in text(response)


@pytest.mark.parametrize(("url", "data"), NUL_POSTS, ids=[u for u, _ in NUL_POSTS])
def test_a_nul_in_a_form_is_a_400_and_changes_nothing(pg_ops, url, data):
    client, ids = pg_ops
    before = snapshot()
    response = post(client, url.format(**ids), {k: v.format(**ids) for k, v in data.items()})
    assert response.status_code == 400
    assert "contains a NUL character (U+0000)" in text(response)
    assert snapshot() == before


def test_a_csv_file_with_a_nul_byte_is_refused_by_line_and_imports_nothing(pg_ops):
    client, _ = pg_ops
    before = snapshot()
    upload = (io.BytesIO(b"name,serial,total_cpu,total_memory,total_storage\n"
                         b"srv-1,SN-1,1,1,1\nsrv\x00-2,SN-2,1,1,1\n"), "servers.csv")
    response = post(client, "/servers/import", {"file": upload},
                    content_type="multipart/form-data")
    assert response.status_code == 422
    assert "line 3: a NUL character (U+0000)" in text(response)
    assert snapshot() == before


def test_a_nul_in_the_login_form_is_a_400_and_signs_nobody_in(pg_app):
    f.user("ops", operator=True)
    db.session.commit()
    client = pg_app.test_client()
    token = csrf_token_from(text(client.get("/login")))
    response = client.post("/login", data={"username": "ops\x00", "password": f.PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 400
    assert client.get("/racks/").status_code == 302  # still signed out


def test_the_api_answers_a_nul_in_the_query_string_with_a_400_problem(pg_app):
    token = token_for(f.user("ops", operator=True))
    response = pg_app.test_client().get("/api/v1/vms?q=%00",
                                        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "validation_error" and "NUL" in body["detail"]


# Ids beyond the database's integers --------------------------------------------------

BIG_ID_URLS = [
    "/racks/{big}", "/racks/{big}/edit", "/servers/{big}", "/groups/{big}", "/tenants/{big}",
    "/tenants/quotas/{big}", "/flavors/{big}", "/vms/{big}", "/clusters/{big}", "/meshes/{big}",
    "/maintainers/{big}", "/maintainers/groups/{big}", "/maintainers/panel/rack/{big}",
    "/vms/99999999999999999999999", "/vms/0", "/vms/%C2%B2",
]


@pytest.mark.parametrize("url", BIG_ID_URLS)
def test_an_id_beyond_the_database_integers_in_a_url_is_a_404(pg_ops, url):
    client, _ = pg_ops
    assert client.get(url.format(big=BIG)).status_code == 404


def test_the_api_answers_an_id_beyond_the_database_integers_with_a_404_problem(pg_app):
    token = token_for(f.user("ops", operator=True))
    response = pg_app.test_client().get(f"/api/v1/vms/{BIG}",
                                        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


BIG_ID_FORMS = [
    ("/vms/new", {"tenant_id": "{tenant}", "group_id": "{big}", "spec_id": "{flavor}",
                  "name": "vm-x", "count": "1", "action": "create"}, "Choose a group."),
    ("/vms/preview", {"tenant_id": "{big}", "group_id": "{group}", "spec_id": "{big}",
                      "name": "vm-x"}, None),
    ("/clusters/new", {"tenant_id": "{tenant}", "group_id": "{group}", "name": "c-x",
                       "control_planes": "1", "control_plane_flavor_id": "{big}",
                       "workers": "0"}, None),
    ("/servers/{server}/move", {"group_id": "{big}"}, None),
    ("/maintainers/groups/new", {"name": "mg-x", "manager_id": "{big}"}, "No such maintainer."),
    ("/maintainers/groups/{maintainer_group}/members", {"op": "add", "maintainer_id": "{big}"},
     None),
    ("/maintainers/panel/rack/{rack}", {"op": "remove", "assignment_id": "{big}"}, None),
    ("/clusters/{cluster}/actions", {"op": "remove_bastion", "link_id": "{big}"}, None),
    ("/clusters/{cluster}/actions", {"op": "bind_mesh", "mesh_id": "{big}", "role": "primary"},
     None),
    ("/clusters/{cluster}/actions", {"op": "scale", "workers": "0", "remove": "{big}"}, None),
]


@pytest.mark.parametrize(("url", "data", "message"), BIG_ID_FORMS,
                         ids=[f"{u} {d.get('op', '')}" for u, d, _ in BIG_ID_FORMS])
def test_an_id_beyond_the_database_integers_in_a_form_is_a_form_error(pg_app, url, data,
                                                                       message):
    objects = estate()
    ids = {name: getattr(objects, name).id for name in objects.__dataclass_fields__}
    client = client_for(pg_app, "ops", operator=True)
    before = snapshot()
    values = {k: v.format(big=BIG, **ids) for k, v in data.items()}
    response = post(client, url.format(**ids), values, follow_redirects=True)
    assert response.status_code in (200, 422)
    if message:
        assert message in text(response)
    assert snapshot() == before


def test_scale_with_a_remove_value_that_is_no_id_is_refused(any_app):
    objects = estate()
    for _ in range(2):
        f.vm(objects.tenant, objects.server, objects.flavor, role="worker",
             k8s_cluster_id=objects.cluster.id)
    db.session.commit()
    client = client_for(any_app, "ops", operator=True)
    before = snapshot()
    for junk in ("²", "abc", str(BIG), "-1"):
        response = post(client, f"/clusters/{objects.cluster.id}/actions",
                        {"op": "scale", "workers": "1", "remove": junk}, follow_redirects=True)
        assert response.status_code == 200
        assert "Choose workers of this cluster" in text(response)
    assert snapshot() == before


# Oversized requests -----------------------------------------------------------------

def test_a_request_over_the_size_cap_is_a_413_page_and_changes_nothing(app):
    client = client_for(app, "ops", operator=True)
    before = snapshot()
    too_big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = post(client, "/tenants/new", {"name": "t-big", "description": too_big})
    assert response.status_code == 413
    assert "Request too large" in text(response) and "2 MB" in text(response)
    assert snapshot() == before


def test_a_pasted_csv_as_large_as_a_file_is_accepted(app):
    """The cap is for the whole request; a pasted CSV is not held to Flask's smaller
    per-field default (500 kB)."""
    client = client_for(app, "ops", operator=True)
    rows = "".join(f"srv-{i},SN-{i},1,1,1\n" for i in range(4000)) + "bad\n"
    csv_text = "name,serial,total_cpu,total_memory,total_storage\n" + rows
    csv_text += "#" * (600_000 - len(csv_text))
    response = post(client, "/servers/import", {"text": csv_text})
    assert response.status_code == 422  # read and refused line by line, not 413
    assert "cells, but the header names" in text(response)


def test_the_api_answers_an_oversized_body_with_a_413_problem(app):
    token = token_for(f.user("ops", operator=True))
    before = snapshot()
    body = '{"name": "t-big", "description": "' + "x" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    response = app.test_client().post("/api/v1/tenants", data=body,
                                      content_type="application/json",
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "too_large"
    assert snapshot() == before


# Filters and dates ------------------------------------------------------------------

UNKNOWN_FILTERS = [
    "/vms/?tenant=abc", "/vms/?maintainer=abc&maintainer_group=x", "/clusters/?tenant=%C2%B2",
    "/servers/?rack=abc&group=1.5", f"/servers/?rack={BIG}", "/flavors/?generation=abc",
    "/racks/?maintainer=abc", "/vms/?tenant=abc&format=csv",
]


@pytest.mark.parametrize("url", UNKNOWN_FILTERS)
def test_unknown_filter_values_on_an_empty_install_are_ignored(any_app, url):
    client = client_for(any_app, "ops", operator=True)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(("days", "found"), [("to=9999-12-31", 1),
                                              ("from=9999-12-31&to=9999-12-31", 0),
                                              ("from=0001-01-01", 1)])
def test_audit_days_at_the_ends_of_the_calendar(any_app, days, found):
    operator = f.user("ops", operator=True)
    record("update", "rack", 1, "rack-1", {"name": {"from": "a", "to": "b"}}, user=operator)
    token = token_for(operator)
    page = any_app.test_client()
    log_in(page, "ops", f.PASSWORD)
    response = page.get(f"/audit/?{days}&object_type=rack")
    assert response.status_code == 200
    assert ("rack-1" in text(response)) == bool(found)
    api = any_app.test_client().get(f"/api/v1/audit-events?{days}&object_type=rack",
                                    headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    assert api.get_json()["total"] == found
