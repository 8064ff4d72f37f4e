"""Service meshes, and which clusters use each in which role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import text
from portal.audit.service import (
    audited_create,
    audited_update,
    history,
    record,
    removed,
    snapshot,
)
from portal.extensions import db
from portal.i18n import _, _n
from portal.models import (
    MESH_STATUSES,
    MESH_TYPES,
    K8sCluster,
    K8sClusterToServiceMesh,
    ServiceMesh,
    User,
)
from portal.vms.labels import enum_label

MESH_FIELDS = ("name", "mesh_type", "version", "status", "description")
MAX_NAME = 64
MAX_VERSION = 32


class MeshInvalid(ValueError):
    """The mesh cannot be saved or deleted; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _clean(values: Mapping[str, Any], mesh: ServiceMesh | None = None) -> dict[str, str]:
    clean = {name: text.clean(values.get(name)) for name in MESH_FIELDS}
    errors = {}
    if not clean["name"]:
        errors["name"] = _("Give the mesh a name.")
    elif hidden := text.name_problem(clean["name"], _("The mesh name")):
        errors["name"] = hidden
    elif len(clean["name"]) > MAX_NAME:
        errors["name"] = _("A mesh name has at most %(max)s characters.", max=MAX_NAME)
    else:
        clash = db.session.scalar(select(ServiceMesh.id).where(ServiceMesh.name == clean["name"]))
        if clash is not None and (mesh is None or clash != mesh.id):
            errors["name"] = _("A mesh named %(name)s already exists.", name=clean["name"])
    if clean["mesh_type"] not in MESH_TYPES:
        errors["mesh_type"] = _("Choose one of %(choices)s.", choices=", ".join(MESH_TYPES))
    if clean["status"] not in MESH_STATUSES:
        errors["status"] = _("Choose one of %(choices)s.", choices=", ".join(
            enum_label("switched", s) for s in MESH_STATUSES))
    if not clean["version"]:
        errors["version"] = _("Give the version, e.g. 1.23.2.")
    elif hidden := text.name_problem(clean["version"], _("The version")):
        errors["version"] = hidden
    elif len(clean["version"]) > MAX_VERSION:
        errors["version"] = _("A version has at most %(max)s characters.", max=MAX_VERSION)
    if problem := text.too_long(clean["description"], text.MAX_DESCRIPTION):
        errors["description"] = problem
    if errors:
        raise MeshInvalid(errors)
    return clean


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise MeshInvalid({"name": _("A mesh with this name already exists.")}) from None


def create_mesh(values: Mapping[str, Any], user: User | None) -> ServiceMesh:
    mesh = audited_create(ServiceMesh(**_clean(values)), "service_mesh", MESH_FIELDS, user)
    _commit()
    return mesh


def update_mesh(mesh: ServiceMesh, values: Mapping[str, Any], user: User | None) -> dict:
    changes = audited_update(mesh, "service_mesh", MESH_FIELDS, _clean(values, mesh), user)
    if changes:
        _commit()
    return changes


def delete_mesh(mesh: ServiceMesh, user: User | None) -> None:
    """Refused while any cluster uses the mesh, naming how many."""
    users = db.session.scalar(
        select(func.count()).where(K8sClusterToServiceMesh.service_mesh_id == mesh.id)
    )
    if users:
        raise MeshInvalid({"mesh": _n(
            "Mesh %(mesh)s is used by %(num)s cluster: unlink it from them first.",
            "Mesh %(mesh)s is used by %(num)s clusters: unlink it from them first.",
            users, mesh=mesh.name)})
    record("delete", "service_mesh", mesh.id, mesh.name, removed(snapshot(mesh, MESH_FIELDS)),
           user=user)
    db.session.delete(mesh)
    db.session.commit()


def mesh_overview(mesh: ServiceMesh) -> dict:
    """The clusters using the mesh, with their role, tenant and group; and its history."""
    links = list(db.session.scalars(
        select(K8sClusterToServiceMesh)
        .join(K8sClusterToServiceMesh.cluster)
        .options(
            joinedload(K8sClusterToServiceMesh.cluster).joinedload(K8sCluster.tenant),
            joinedload(K8sClusterToServiceMesh.cluster).joinedload(K8sCluster.group),
        )
        .where(K8sClusterToServiceMesh.service_mesh_id == mesh.id)
        .order_by(K8sClusterToServiceMesh.role, K8sCluster.name)
    ))
    return {"links": links, "events": history("service_mesh", mesh.id)}
