from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import can, get_or_404, requires
from portal.meshes import service
from portal.meshes.forms import MeshForm
from portal.models import MESH_STATUSES, MESH_TYPES, ServiceMesh
from portal.web import list_page
from portal.web.forms import show_errors
from portal.web.listing import Column, Filter, Listing
from portal.web.options import enum_choices

bp = Blueprint("meshes", __name__, url_prefix="/meshes")

meshes = Listing(
    name="service-meshes",
    statement=lambda: select(ServiceMesh),
    columns=[
        Column("name", "Name", ServiceMesh.name),
        Column("mesh_type", "Type", ServiceMesh.mesh_type),
        Column("version", "Version", ServiceMesh.version),
        Column("status", "Status", ServiceMesh.status),
        Column("description", "Description", ServiceMesh.description),
    ],
    search=[ServiceMesh.name, ServiceMesh.version],
    filters=[
        Filter("mesh_type", "Type", lambda s, v: s.where(ServiceMesh.mesh_type == v),
               lambda: enum_choices(MESH_TYPES)),
        Filter("status", "Status", lambda s, v: s.where(ServiceMesh.status == v),
               lambda: enum_choices(MESH_STATUSES)),
    ],
)


@bp.route("/")
@requires("meshes")
def list():  # noqa: A001
    return list_page(meshes, "meshes/list.html")


@bp.route("/<int:mesh_id>")
@requires("meshes")
def detail(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    return render_template("meshes/detail.html", mesh=mesh, editable=can("meshes", "write"),
                           **service.mesh_overview(mesh))


def _form_page(form: MeshForm, mesh: ServiceMesh | None):
    return render_template("meshes/form.html", form=form, mesh=mesh), (
        422 if form.errors or form.form_errors else 200)


@bp.route("/new", methods=["GET", "POST"])
@requires("meshes", "write")
def new():
    form = MeshForm()
    if form.validate_on_submit():
        try:
            mesh = service.create_mesh(form.data, current_user)
        except service.MeshInvalid as invalid:
            show_errors(form, invalid.errors)
        else:
            flash(f"Service mesh {mesh.name} created.", "success")
            return redirect(url_for("meshes.detail", mesh_id=mesh.id))
    return _form_page(form, None)


@bp.route("/<int:mesh_id>/edit", methods=["GET", "POST"])
@requires("meshes", "write")
def edit(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    form = MeshForm(obj=mesh)
    if form.validate_on_submit():
        try:
            service.update_mesh(mesh, form.data, current_user)
        except service.MeshInvalid as invalid:
            show_errors(form, invalid.errors)
        else:
            flash(f"Service mesh {mesh.name} saved.", "success")
            return redirect(url_for("meshes.detail", mesh_id=mesh.id))
    return _form_page(form, mesh)


@bp.route("/<int:mesh_id>/delete", methods=["GET", "POST"])
@requires("meshes", "write")
def delete(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    if request.method == "POST":
        name = mesh.name
        try:
            service.delete_mesh(mesh, current_user)
        except service.MeshInvalid as invalid:
            flash(invalid.errors["mesh"], "error")
            return redirect(url_for("meshes.detail", mesh_id=mesh.id))
        flash(f"Service mesh {name} deleted.", "success")
        return redirect(url_for("meshes.list"))
    return render_template("meshes/confirm_delete.html", mesh=mesh)
