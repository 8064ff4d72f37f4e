"""Service meshes: list, create / edit / delete, and which clusters use each in which role."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, K8sClusterToServiceMesh, ServiceMesh
from tests import factories as f
from tests.conftest import csrf_token_from, log_in
from tests.web.test_lists import count_queries

HX = {"HX-Request": "true"}


@pytest.fixture
def ops(app):
    f.user("ops", operator=True)
    f.user("acme-admin", tenants=(f.tenant(name="acme").name,))
    db.session.commit()
    client = app.test_client()
    log_in(client, "ops", f.PASSWORD)
    return client


def names(client, url):
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert "<html" not in html
    return re.findall(r'<a href="/meshes/\d+">([^<]+)</a>', html)


def post(client, url, **data):
    token = csrf_token_from(client.get("/meshes/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def link(cluster, mesh, role):
    db.session.add(K8sClusterToServiceMesh(cluster=cluster, service_mesh=mesh, role=role))
    db.session.flush()


def test_list_filters_sort_paging_search_and_csv(app, ops):
    for i in range(30):
        f.mesh(name=f"mesh-{i:02d}", mesh_type=("istio", "cilium", "other")[i % 3],
               status="error" if i == 7 else "active", version=f"1.{i}.0")
    db.session.commit()
    assert names(ops, "/meshes/?status=error") == ["mesh-07"]
    assert names(ops, "/meshes/?mesh_type=cilium&per_page=50")[:2] == ["mesh-01", "mesh-04"]
    assert names(ops, "/meshes/?sort=-name")[0] == "mesh-29"
    assert names(ops, "/meshes/?per_page=25&page=2") == [f"mesh-{i}" for i in range(25, 30)]
    assert names(ops, "/meshes/?q=1.2") == ["mesh-02"] + [f"mesh-{i}" for i in range(20, 30)]
    table = list(csv.reader(io.StringIO(
        ops.get("/meshes/?mesh_type=other&format=csv").get_data(as_text=True))))
    assert table[0] == ["Name", "Type", "Version", "Status", "Description"]
    assert table[1][:4] == ["mesh-02", "other", "1.2.0", "active"]
    assert len(table) == 11


def test_detail_lists_clusters_by_role_and_delete_is_refused_while_used(app, ops):
    grp, tenant = f.group(name="g1"), f.tenant(name="globex")
    mesh = f.mesh(name="istio-prod")
    link(f.cluster(tenant, grp, name="web-prod"), mesh, "primary")
    link(f.cluster(tenant, grp, name="batch"), mesh, "secondary")
    db.session.commit()
    html = ops.get(f"/meshes/{mesh.id}").get_data(as_text=True)
    assert re.search(r'web-prod</a></td>\s*<td><span class="badge mesh-role mesh-role-primary">'
                     r'primary', html)
    assert re.search(r">batch</a>.*?secondary", html, re.S)
    refused = post(ops, f"/meshes/{mesh.id}/delete")
    page = ops.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Mesh istio-prod is used by 2 clusters" in page
    assert db.session.get(ServiceMesh, mesh.id) is not None


def test_create_edit_delete_audited(app, ops):
    bad = post(ops, "/meshes/new", name="", mesh_type="linkerd", version="", status="active")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Give the mesh a name." in html
    assert "Choose one of cilium, istio, other." in html
    assert post(ops, "/meshes/new", name="cilium-edge", mesh_type="cilium", version="1.16.1",
                status="active").status_code == 302
    mesh = db.session.scalar(select(ServiceMesh))
    assert post(ops, f"/meshes/{mesh.id}/edit", name="cilium-edge", mesh_type="cilium",
                version="1.16.3", status="active", description="").status_code == 302
    page = ops.get(f"/meshes/{mesh.id}").get_data(as_text=True)
    assert "Version 1.16.1 → 1.16.3, by user ops" in page
    mesh_id = mesh.id
    assert post(ops, f"/meshes/{mesh_id}/delete").status_code == 302
    assert db.session.get(ServiceMesh, mesh_id) is None
    assert db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "service_mesh").order_by(AuditEvent.id)).all() == [
        "create", "update", "delete"]


def test_tenant_admins_do_not_see_meshes(app, ops):
    mesh = f.mesh()
    db.session.commit()
    client = app.test_client()
    log_in(client, "acme-admin", f.PASSWORD)
    assert client.get(f"/meshes/{mesh.id}").status_code == 403


def test_detail_query_count_does_not_grow(app, ops):
    mesh = f.mesh()
    db.session.commit()
    url = f"/meshes/{mesh.id}"
    ops.get(url)
    with count_queries() as few:
        ops.get(url)
    grp = f.group()
    mesh = db.session.get(ServiceMesh, mesh.id)
    for _ in range(30):
        link(f.cluster(f.tenant(), grp), mesh, "secondary")
    db.session.commit()
    with count_queries() as many:
        assert ops.get(url).status_code == 200
    assert many["n"] == few["n"]
